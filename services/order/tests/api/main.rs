mod auth;
mod health;
mod helpers;
mod orders;
mod payments;
