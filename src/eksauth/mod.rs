pub mod provider;
pub mod sts;
