//! Connection-pool plugins.

pub mod sea_orm_pool;

pub use sea_orm_pool::SeaOrmPool;
