//! Cursor pagination. Lists are ordered newest first by id (ids are UUID v7,
//! so id order is creation order); the cursor is the last id of a page.

use serde::Serialize;

/// What page the caller asks for.
#[derive(Clone, Debug)]
pub struct PageRequest {
    /// Rows per page, already clamped to 1..=200.
    pub limit: u32,
    /// Return rows after this id (exclusive), newest first.
    pub after: Option<String>,
}

impl PageRequest {
    /// The first page with the default size.
    pub fn first() -> Self {
        Self { limit: 50, after: None }
    }

    /// How many rows to fetch: one more than the limit tells whether a next
    /// page exists without a count query.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

/// One page of rows and the cursor of the next.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The rows.
    pub data: Vec<T>,
    /// The id to continue after, when there is more.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows.
    pub fn from_rows(mut rows: Vec<T>, request: &PageRequest, id_of: impl Fn(&T) -> String) -> Self {
        let limit = request.limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(&id_of)
        } else {
            None
        };
        Self { data: rows, next_cursor }
    }

    /// Changes the row type.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { data: self.data.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}
