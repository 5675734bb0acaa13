//! Integration tests: the real server over real HTTP on an ephemeral port,
//! on SQLite by default and on PostgreSQL when `CONSIGN_TEST_DATABASE_URL`
//! points at one. Modules mirror the API.

mod abuse;
mod account_emails;
mod architecture;
mod auth;
mod bad_input;
mod browser;
mod catalog;
mod channels;
mod checkout;
mod contract;
mod customer_view;
mod demo;
mod durability;
mod fulfillment;
mod idempotency;
mod inventory;
mod jobs;
mod live;
mod members;
mod messages;
mod money_safety;
mod notifications;
mod ops;
mod order_access;
mod orders;
mod pages;
mod pages_bulk;
mod pages_messaging;
mod payments;
mod payments_model;
mod rate_limits;
mod readme;
mod secrets;
mod sessions;
mod storage;
mod tenancy;
mod uploads;
