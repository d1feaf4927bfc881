//! API-key authentication and role checks.
//!
//! Tokens are configured by their SHA-256 digest; a request's bearer token
//! is hashed and compared with every configured digest in constant time
//! (no early exit, so timing tells nothing about which digest was close).
//! The caller's name becomes the [`Actor`] (audit, events, rate limits).

use salvo::http::StatusCode;
use salvo::http::header::AUTHORIZATION;
use salvo::prelude::*;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Actor, ApiError, RequestId};
use crate::config::{AuthConfig, Role};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Products and orders: `read` for GET/HEAD, `write` otherwise.
    Resource,
    /// Audit, debug, metrics: `admin`.
    Admin,
}

struct Key {
    name: String,
    digest: [u8; 32],
    roles: Vec<Role>,
}

/// The auth hoop for one class of routes.
pub(crate) struct Auth {
    enabled: bool,
    keys: Vec<Key>,
    access: Access,
}

impl Auth {
    /// A hoop enforcing `access` with the keys of `config`.
    pub(crate) fn new(config: &AuthConfig, access: Access) -> Self {
        let keys = config
            .keys
            .iter()
            .filter_map(|k| {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(&k.sha256, &mut digest).ok()?;
                Some(Key {
                    name: k.name.clone(),
                    digest,
                    roles: k.roles.clone(),
                })
            })
            .collect();
        Self {
            enabled: config.enabled,
            keys,
            access,
        }
    }

    /// The key whose digest matches `token`, checking every key.
    fn find(&self, token: &str) -> Option<&Key> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for key in &self.keys {
            if bool::from(key.digest.ct_eq(&digest)) {
                found = Some(key);
            }
        }
        found
    }

    fn allowed(&self, key: &Key, method: &salvo::http::Method) -> bool {
        let needs = match self.access {
            Access::Admin => Role::Admin,
            Access::Resource
                if method == salvo::http::Method::GET || method == salvo::http::Method::HEAD =>
            {
                Role::Read
            }
            Access::Resource => Role::Write,
        };
        key.roles
            .iter()
            .any(|&r| r == Role::Admin || r == needs || (needs == Role::Read && r == Role::Write))
    }
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[async_trait]
impl Handler for Auth {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        if !self.enabled {
            return;
        }
        let refuse = |err: ApiError, depot: &Depot, res: &mut Response, ctrl: &mut FlowCtrl| {
            let id = depot
                .get_typed::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default();
            err.render(&id, res);
            ctrl.skip_rest();
        };
        let Some(key) = bearer(req).and_then(|t| self.find(t)) else {
            let err = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send Authorization: Bearer <token> with a configured token",
            );
            return refuse(err, depot, res, ctrl);
        };
        depot.insert_typed(Actor(key.name.clone()));
        if !self.allowed(key, req.method()) {
            let err = ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("token {} lacks the role this request needs", key.name),
            );
            refuse(err, depot, res, ctrl);
        }
    }
}
