//! Authorization: one place that answers "may this caller do this action
//! here?". Handlers ask it through the web crate's `Caller`; storage enforces
//! visibility separately through its tenant scope, so a row the caller cannot
//! see is never read in the first place.

use crate::roles::{BrandRole, OrgRole, OrganizationKind};
use crate::{BrandId, OrganizationId};

/// How a caller reaches one brand. Derived from memberships, fulfilment
/// partnerships and API keys; the strongest path wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum BrandAccess {
    /// An API key bound to the brand: works with catalog, stock and orders.
    Integration,
    /// Staff of a 3PL that fulfils for the brand: sees and works orders,
    /// stock and messages, but does not manage the brand itself.
    Fulfiller,
    /// A member of the brand, or of the organization that owns it.
    Member,
    /// An admin of the brand, or of the organization that owns it.
    Admin,
}

impl BrandAccess {
    /// The access a brand-level role gives.
    pub fn from_brand_role(role: BrandRole) -> Self {
        match role {
            BrandRole::BrandAdmin => Self::Admin,
            BrandRole::BrandMember => Self::Member,
        }
    }

    /// The access an owner organization's role gives over its brands.
    pub fn from_org_role(role: OrgRole) -> Self {
        match role {
            OrgRole::OrgAdmin => Self::Admin,
            OrgRole::OrgMember => Self::Member,
        }
    }
}

/// One brand a caller can see, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrandGrant {
    /// The brand.
    pub brand_id: BrandId,
    /// The organization that owns it.
    pub organization_id: OrganizationId,
    /// The caller's access to it.
    pub access: BrandAccess,
}

/// One organization a caller belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrgGrant {
    /// The organization.
    pub organization_id: OrganizationId,
    /// Its kind.
    pub kind: OrganizationKind,
    /// The caller's role in it.
    pub role: OrgRole,
}

/// Everything a caller may see: the input of every decision below.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    /// A platform admin sees every tenant.
    pub platform_admin: bool,
    /// Organizations the caller is a member of.
    pub organizations: Vec<OrgGrant>,
    /// Brands the caller can see.
    pub brands: Vec<BrandGrant>,
}

/// Something a caller may want to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read a brand's settings.
    ViewBrand,
    /// Change a brand's settings or its fulfilment partners.
    ManageBrand,
    /// Add or change a brand's members.
    ManageBrandMembers,
    /// Create, list and revoke a brand's API keys.
    ManageApiKeys,
    /// Read products, stock and orders of a brand.
    ViewCommerce,
    /// Change products, stock and orders of a brand.
    EditCommerce,
    /// Create a brand in an organization.
    CreateBrand,
    /// Manage an organization's warehouses.
    ManageWarehouses,
    /// List an organization's members and pending invitations.
    ViewOrganizationMembers,
    /// Invite, change the role of and remove an organization's members.
    ManageOrganizationMembers,
}

impl Grants {
    /// The caller's access to a brand, if it can see it at all.
    pub fn brand_access(&self, brand_id: BrandId) -> Option<BrandAccess> {
        self.brands.iter().filter(|g| g.brand_id == brand_id).map(|g| g.access).max()
    }

    /// Whether the caller can see the brand.
    pub fn sees_brand(&self, brand_id: BrandId) -> bool {
        self.platform_admin || self.brand_access(brand_id).is_some()
    }

    /// The caller's role in an organization.
    pub fn org_role(&self, organization_id: OrganizationId) -> Option<OrgRole> {
        self.organizations.iter().find(|g| g.organization_id == organization_id).map(|g| g.role)
    }

    /// Whether the caller can see the organization's own rows (warehouses…).
    pub fn sees_organization(&self, organization_id: OrganizationId) -> bool {
        self.platform_admin || self.org_role(organization_id).is_some()
    }

    /// May the caller do `action` on this brand?
    pub fn allows_on_brand(&self, action: Action, brand_id: BrandId) -> bool {
        if self.platform_admin {
            return true;
        }
        let Some(access) = self.brand_access(brand_id) else {
            return false;
        };
        use BrandAccess::*;
        match action {
            Action::ViewBrand | Action::ViewCommerce | Action::EditCommerce => true,
            Action::ManageBrand | Action::ManageBrandMembers | Action::ManageApiKeys => access == Admin,
            Action::CreateBrand
            | Action::ManageWarehouses
            | Action::ViewOrganizationMembers
            | Action::ManageOrganizationMembers => false,
        }
    }

    /// May the caller do `action` in this organization?
    pub fn allows_in_organization(&self, action: Action, organization_id: OrganizationId) -> bool {
        if self.platform_admin {
            return true;
        }
        let role = self.org_role(organization_id);
        match action {
            Action::CreateBrand | Action::ManageWarehouses | Action::ManageOrganizationMembers => {
                role == Some(OrgRole::OrgAdmin)
            }
            Action::ViewOrganizationMembers => role.is_some(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(access: BrandAccess) -> (Grants, BrandId) {
        let brand_id = BrandId::new();
        let grants = Grants {
            platform_admin: false,
            organizations: vec![],
            brands: vec![BrandGrant { brand_id, organization_id: OrganizationId::new(), access }],
        };
        (grants, brand_id)
    }

    #[test]
    fn a_fulfiller_works_orders_but_does_not_manage_the_brand() {
        let (grants, brand) = grants(BrandAccess::Fulfiller);
        assert!(grants.allows_on_brand(Action::EditCommerce, brand));
        assert!(!grants.allows_on_brand(Action::ManageBrand, brand));
        assert!(!grants.allows_on_brand(Action::ManageApiKeys, brand));
    }

    #[test]
    fn nobody_acts_on_a_brand_they_cannot_see() {
        let (grants, _) = grants(BrandAccess::Admin);
        assert!(!grants.allows_on_brand(Action::ViewBrand, BrandId::new()));
    }

    #[test]
    fn the_strongest_path_to_a_brand_wins() {
        let (mut grants, brand) = grants(BrandAccess::Member);
        grants.brands.push(BrandGrant {
            brand_id: brand,
            organization_id: OrganizationId::new(),
            access: BrandAccess::Admin,
        });
        assert_eq!(grants.brand_access(brand), Some(BrandAccess::Admin));
    }

    #[test]
    fn only_org_admins_create_brands() {
        let org = OrganizationId::new();
        let mut grants = Grants::default();
        grants.organizations.push(OrgGrant {
            organization_id: org,
            kind: OrganizationKind::Merchant,
            role: OrgRole::OrgMember,
        });
        assert!(!grants.allows_in_organization(Action::CreateBrand, org));
        grants.organizations[0].role = OrgRole::OrgAdmin;
        assert!(grants.allows_in_organization(Action::CreateBrand, org));
    }

    #[test]
    fn members_see_their_organization_but_only_admins_manage_its_members() {
        let org = OrganizationId::new();
        let mut grants = Grants::default();
        grants.organizations.push(OrgGrant {
            organization_id: org,
            kind: OrganizationKind::Threepl,
            role: OrgRole::OrgMember,
        });
        assert!(grants.allows_in_organization(Action::ViewOrganizationMembers, org));
        assert!(!grants.allows_in_organization(Action::ManageOrganizationMembers, org));
        assert!(!grants.allows_in_organization(Action::ViewOrganizationMembers, OrganizationId::new()));
        grants.organizations[0].role = OrgRole::OrgAdmin;
        assert!(grants.allows_in_organization(Action::ManageOrganizationMembers, org));
    }
}
