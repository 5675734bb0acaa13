//! Local servers that speak the providers' protocols, for tests: an SMTP
//! server that keeps what it receives, an HTTP server that records every
//! request (Twilio's and WhatsApp's APIs), and the payment providers'
//! APIs (Stripe, Razorpay, PayPal).

pub mod http;
pub mod payment_apis;
pub mod smtp;
