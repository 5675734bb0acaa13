//! Local servers that speak the providers' protocols, for tests: an SMTP
//! server that keeps what it receives, and an HTTP server that records
//! every request (Twilio's and WhatsApp's APIs).

pub mod http;
pub mod smtp;
