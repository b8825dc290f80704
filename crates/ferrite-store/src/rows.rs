//! Rows as the tables hold them, and their conversion to and from the model.
//! Shared by every SQL backend: the schema is portable on purpose.

use ferrite_model::{
    Access, ApiKey, App, Call, CallStatus, Format, Millis, Route, RouteType, RouteVersion,
};
use serde::{de::DeserializeOwned, Serialize};

use crate::{StoreError, StoredKey};

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AppRow {
    pub name: String,
    pub config: Option<String>,
    pub limits: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RouteRow {
    pub app_name: String,
    pub path: String,
    pub image: String,
    pub memory: i64,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub format: String,
    pub max_concurrency: i64,
    pub timeout: i64,
    pub idle_timeout: i64,
    pub headers: Option<String>,
    pub config: Option<String>,
    pub jwt_key: Option<String>,
    pub max_retries: i64,
    /// The service section as JSON; `NULL` when the route has none.
    pub service: Option<String>,
    /// The confinement section as JSON; `NULL` when the route has none.
    pub confinement: Option<String>,
    /// The newest version's number.
    pub version: i64,
    /// The traffic as JSON; `NULL` when the newest version takes it all.
    pub traffic: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct VersionRow {
    pub app_name: String,
    pub path: String,
    pub version: i64,
    pub definition: String,
    pub created_at: i64,
}

/// Column list of `route_versions`, in [`VersionRow`]'s order.
pub(crate) const VERSION_COLUMNS: &str = "app_name, path, version, definition, created_at";

impl TryFrom<VersionRow> for RouteVersion {
    type Error = StoreError;

    fn try_from(row: VersionRow) -> Result<Self, Self::Error> {
        let definition = serde_json::from_str(&row.definition).map_err(|e| {
            StoreError::Corrupt(format!("route {} version {}: {e}", row.path, row.version))
        })?;
        Ok(RouteVersion {
            version: version_number(row.version)?,
            app_name: row.app_name,
            path: row.path,
            created_at: Millis(row.created_at),
            definition,
        })
    }
}

pub(crate) fn version_number(value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("route version {value}")))
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct CallRow {
    pub id: String,
    pub app_name: String,
    pub path: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub status: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub error: Option<String>,
    pub attempts: i64,
    pub version: Option<i64>,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct KeyRow {
    pub id: String,
    pub app_name: String,
    pub access: String,
    pub name: Option<String>,
    pub secret_hash: Vec<u8>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// Column list of `api_keys`, in [`KeyRow`]'s order.
pub(crate) const KEY_COLUMNS: &str =
    "id, app_name, access, name, secret_hash, created_at, expires_at";

impl TryFrom<KeyRow> for StoredKey {
    type Error = StoreError;

    fn try_from(row: KeyRow) -> Result<Self, Self::Error> {
        let access = Access::parse(&row.access)
            .map_err(|_| StoreError::Corrupt(format!("key {}: access {:?}", row.id, row.access)))?;
        Ok(StoredKey {
            key: ApiKey {
                id: row.id,
                app: row.app_name,
                access,
                name: row.name,
                created_at: Millis(row.created_at),
                expires_at: row.expires_at.map(Millis),
            },
            secret_hash: row.secret_hash,
        })
    }
}

/// Column list of `calls` (without `output`), in [`CallRow`]'s order.
pub(crate) const CALL_COLUMNS: &str = "id, app_name, path, type, status, created_at, \
     started_at, completed_at, error, attempts, version";

/// Column list of `routes`, in [`RouteRow`]'s order.
pub(crate) const ROUTE_COLUMNS: &str = "app_name, path, image, memory, type, format, \
     max_concurrency, timeout, idle_timeout, headers, config, jwt_key, max_retries, service, \
     confinement, version, traffic";

pub(crate) fn to_json<T: Serialize>(value: &Option<T>) -> Result<Option<String>, StoreError> {
    value
        .as_ref()
        .map(|v| serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

fn from_json<T: DeserializeOwned>(
    what: &str,
    text: Option<String>,
) -> Result<Option<T>, StoreError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("{what}: {e}"))))
        .transpose()
}

fn unsigned(what: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} is negative: {value}")))
}

/// Numbers in the model are bounded far below `i64::MAX`, so this never saturates in practice.
pub(crate) fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl TryFrom<AppRow> for App {
    type Error = StoreError;

    fn try_from(row: AppRow) -> Result<App, StoreError> {
        Ok(App {
            config: from_json("app config", row.config)?,
            limits: from_json("app limits", row.limits)?,
            name: row.name,
        })
    }
}

fn route_type(value: &str) -> Result<RouteType, StoreError> {
    match value {
        "sync" => Ok(RouteType::Sync),
        "async" => Ok(RouteType::Async),
        other => Err(StoreError::Corrupt(format!("route type {other:?}"))),
    }
}

impl TryFrom<CallRow> for Call {
    type Error = StoreError;

    fn try_from(row: CallRow) -> Result<Call, StoreError> {
        let status = CallStatus::parse(&row.status)
            .ok_or_else(|| StoreError::Corrupt(format!("call status {:?}", row.status)))?;
        let attempts = u32::try_from(row.attempts)
            .map_err(|_| StoreError::Corrupt(format!("call attempts {}", row.attempts)))?;
        Ok(Call {
            kind: route_type(&row.kind)?,
            status,
            created_at: Millis(row.created_at),
            started_at: row.started_at.map(Millis),
            completed_at: row.completed_at.map(Millis),
            attempts,
            id: row.id,
            app_name: row.app_name,
            path: row.path,
            error: row.error,
            version: row.version.map(version_number).transpose()?,
        })
    }
}

impl TryFrom<RouteRow> for Route {
    type Error = StoreError;

    fn try_from(row: RouteRow) -> Result<Route, StoreError> {
        let kind = route_type(&row.kind)?;
        let format = match row.format.as_str() {
            "default" => Format::Default,
            "http" => Format::Http,
            other => return Err(StoreError::Corrupt(format!("route format {other:?}"))),
        };
        Ok(Route {
            memory: unsigned("memory", row.memory)?,
            kind,
            format,
            max_concurrency: unsigned("max_concurrency", row.max_concurrency)?,
            timeout: unsigned("timeout", row.timeout)?,
            idle_timeout: unsigned("idle_timeout", row.idle_timeout)?,
            headers: from_json("route headers", row.headers)?,
            config: from_json("route config", row.config)?,
            jwt_key: row.jwt_key,
            max_retries: u32::try_from(row.max_retries).map_err(|_| {
                StoreError::Corrupt(format!("route max_retries {}", row.max_retries))
            })?,
            service: from_json("route service", row.service)?,
            confinement: from_json("route confinement", row.confinement)?,
            version: version_number(row.version)?,
            traffic: from_json("route traffic", row.traffic)?,
            app_name: row.app_name,
            path: row.path,
            image: row.image,
        })
    }
}
