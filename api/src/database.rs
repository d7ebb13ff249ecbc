//! Finding the database: `DATABASE_URL`, or the private cluster.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::config::DatabaseSettings;
use crate::postgres_cluster::{ClusterError, PrivateCluster};

/// The database name used on the private cluster.
pub const PRIVATE_DATABASE: &str = "shop";

/// The database to use, and the private cluster behind it when we started one.
#[derive(Debug)]
pub struct Database {
    pub url: String,
    pub cluster: Option<PrivateCluster>,
}

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("cannot create the database: {0}")]
    Create(#[from] sqlx::Error),
}

impl Database {
    /// `DATABASE_URL` when set; otherwise starts (or adopts) the private cluster
    /// in the data folder and makes sure its `shop` database exists.
    pub async fn resolve(settings: &DatabaseSettings) -> Result<Self, DatabaseError> {
        if let Some(url) = &settings.database_url {
            return Ok(Self {
                url: url.clone(),
                cluster: None,
            });
        }
        let cluster = PrivateCluster::start(&settings.data_dir).await?;
        let url = cluster.url(PRIVATE_DATABASE);
        if let Err(e) = create_database_if_missing(&cluster.url("postgres"), PRIVATE_DATABASE).await
        {
            if cluster.started_here() {
                let _ = cluster.stop().await;
            }
            return Err(e.into());
        }
        Ok(Self {
            url,
            cluster: Some(cluster),
        })
    }

    /// Stops the private cluster: always when `owner` (the server owns the
    /// cluster it runs on, even one it adopted after a crash), otherwise only
    /// when this process started it (a tool must not stop a running server's
    /// database).
    pub async fn shutdown(self, owner: bool) {
        if let Some(cluster) = self.cluster.filter(|c| owner || c.started_here()) {
            match cluster.stop().await {
                Ok(()) => tracing::info!("stopped the private PostgreSQL cluster"),
                Err(e) => {
                    tracing::error!(error = %e, "could not stop the private PostgreSQL cluster")
                }
            }
        }
    }
}

/// Creates database `name` on the server of `admin_url` unless it exists.
pub async fn create_database_if_missing(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let options = PgConnectOptions::from_str(admin_url)?.disable_statement_logging();
    let mut conn = sqlx::PgConnection::connect_with(&options).await?;
    let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut conn)
        .await?;
    if exists.is_none() {
        let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        match sqlx::query(&sql).execute(&mut conn).await {
            Ok(_) => {}
            // Another process created it first.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e),
        }
    }
    conn.close().await
}
