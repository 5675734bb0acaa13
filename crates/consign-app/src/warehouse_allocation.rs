//! A brand's warehouses and the order stock is allocated from them in:
//! who may set them and the rules of the list, shared by the API
//! (`PUT /brands/{id}/warehouses`) and the brand's settings page.

use std::collections::HashMap;

use consign_db::Scope;
use consign_db::warehouses::{self, Allocation, AllocationError, BrandWarehouse};
use consign_domain::policy::Action;
use consign_domain::{BrandId, WarehouseId};

use crate::order_commands::{CommandError, FieldProblem, staff_may};

/// The highest priority a warehouse may have (lower is allocated first).
pub const MAX_PRIORITY: i64 = 1_000_000;
/// The most warehouses one brand ships from.
pub const MAX_WAREHOUSES: usize = 100;

/// Replaces the warehouses serving a brand and their priorities. Allowed to
/// a brand admin and to an org admin of a 3PL that fulfils for the brand;
/// every warehouse must belong to the brand's organization or to one of its
/// fulfillers, and appear once. Problems name `warehouses[i].…` fields.
pub async fn set(
    db: &consign_db::Db,
    scope: &Scope,
    brand_id: BrandId,
    allocation: &[Allocation],
) -> Result<Vec<BrandWarehouse>, CommandError> {
    staff_may(scope, Action::ViewBrand, brand_id)?;
    let grants = scope.grants();
    if !grants.allows_on_brand(Action::ManageBrand, brand_id) {
        let fulfillers = warehouses::fulfillers(db, scope, brand_id).await?;
        if !fulfillers.iter().any(|org| grants.allows_in_organization(Action::ManageWarehouses, *org)) {
            return Err(CommandError::Forbidden);
        }
    }
    if allocation.len() > MAX_WAREHOUSES {
        return Err(CommandError::field("warehouses", format!("may list at most {MAX_WAREHOUSES}")));
    }
    let mut seen: HashMap<WarehouseId, usize> = HashMap::new();
    let mut problems = Vec::new();
    for (index, entry) in allocation.iter().enumerate() {
        if !(0..=MAX_PRIORITY).contains(&entry.priority) {
            problems.push(FieldProblem::new(
                format!("warehouses[{index}].priority"),
                format!("must be between 0 and {MAX_PRIORITY}"),
            ));
        }
        if let Some(first) = seen.insert(entry.warehouse_id, index) {
            problems.push(FieldProblem::new(
                format!("warehouses[{index}].warehouse_id"),
                format!("is listed twice (also warehouses[{first}])"),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(CommandError::Invalid(problems));
    }
    warehouses::set_for_brand(db, scope, brand_id, allocation).await.map_err(|error| match error {
        AllocationError::Ineligible { index } => CommandError::field(
            format!("warehouses[{index}].warehouse_id"),
            "no such warehouse of the brand's organization or of a 3PL that fulfils for it",
        ),
        AllocationError::Db(error) => error.into(),
    })
}
