//! Integration tests: the real server over real HTTP on an ephemeral port,
//! on SQLite by default and on PostgreSQL when `CONSIGN_TEST_DATABASE_URL`
//! points at one. Modules mirror the API.

mod auth;
mod bad_input;
mod browser;
mod catalog;
mod channels;
mod checkout;
mod contract;
mod demo;
mod fulfillment;
mod idempotency;
mod inventory;
mod jobs;
mod live;
mod messages;
mod notifications;
mod ops;
mod orders;
mod pages;
mod pages_messaging;
mod payments;
mod payments_model;
mod storage;
mod tenancy;
