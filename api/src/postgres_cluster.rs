//! A private PostgreSQL cluster for running without `DATABASE_URL`.
//!
//! The cluster lives in a folder of the project (`.data/postgres` by default),
//! is created with `initdb` on first use, listens on 127.0.0.1 only, on a free
//! port, with a generated password, and is reused on the next start. A cluster
//! left running by a process that was killed is adopted; a stale
//! `postmaster.pid` is removed. PostgreSQL refuses to run as root, so when this
//! process is root the cluster runs as the `postgres` OS user.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

/// Why the private cluster could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found: install PostgreSQL \
         (Debian/Ubuntu: `apt-get install postgresql`, macOS: `brew install postgresql`) \
         or set DATABASE_URL to a running server"
    )]
    NoBinaries,
    #[error("running as root, but there is no `postgres` OS user to run PostgreSQL as: create one or set DATABASE_URL")]
    NoPostgresUser,
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

/// A running private cluster.
#[derive(Debug)]
pub struct PrivateCluster {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    port: u16,
    password: String,
    run_as: Option<nix::unistd::User>,
    started_here: bool,
}

const SUPERUSER: &str = "postgres";

impl PrivateCluster {
    /// Starts (or adopts) the cluster kept under `root` (`root/postgres`).
    pub async fn start(root: &Path) -> Result<Self, ClusterError> {
        let bin_dir = find_binaries().ok_or(ClusterError::NoBinaries)?;
        let run_as = if nix::unistd::geteuid().is_root() {
            Some(
                nix::unistd::User::from_name(SUPERUSER)
                    .ok()
                    .flatten()
                    .ok_or(ClusterError::NoPostgresUser)?,
            )
        } else {
            None
        };
        fs::create_dir_all(root).map_err(|e| io(root, e))?;
        let root = root.canonicalize().map_err(|e| io(root, e))?;
        let data_dir = root.join("postgres");
        let password_file = root.join("postgres.password");
        let mut cluster = PrivateCluster {
            bin_dir,
            data_dir,
            port: 0,
            password: String::new(),
            run_as,
            started_here: false,
        };

        if !cluster.data_dir.join("PG_VERSION").exists() {
            cluster.init(&password_file).await?;
        }
        cluster.password = fs::read_to_string(&password_file)
            .map_err(|e| io(&password_file, e))?
            .trim()
            .to_string();

        if let Some(port) = cluster.running_port().await? {
            if answers(port).await {
                tracing::info!(port, data_dir = %cluster.data_dir.display(), "adopting the private PostgreSQL cluster that is already running");
                cluster.port = port;
                return Ok(cluster);
            }
            // A postmaster that was killed can linger as a zombie and look alive.
            tracing::warn!(
                port,
                "the recorded PostgreSQL server does not answer; starting a new one"
            );
            let pid_file = cluster.data_dir.join("postmaster.pid");
            fs::remove_file(&pid_file).map_err(|e| io(&pid_file, e))?;
        }
        // Retried: after a crash the old server's processes may take a moment
        // to release its shared memory.
        let mut attempt = 0;
        loop {
            cluster.port = free_port().map_err(|e| io(Path::new("127.0.0.1:0"), e))?;
            match cluster.pg_ctl_start().await {
                Ok(()) => break,
                Err(e) if attempt < 4 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "PostgreSQL did not start; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e),
            }
        }
        tracing::info!(port = cluster.port, data_dir = %cluster.data_dir.display(), "started the private PostgreSQL cluster");
        cluster.started_here = true;
        Ok(cluster)
    }

    /// A connection URL for `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether this process started the server (rather than adopting one
    /// that was already running).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    /// Stops the cluster (fast shutdown: open sessions are ended).
    pub async fn stop(&self) -> Result<(), ClusterError> {
        stop_data_dir(&self.bin_dir, &self.data_dir, self.run_as.as_ref()).await
    }

    /// Starts the cluster again, on the same port, after [`Self::stop`]
    /// (clients configured with [`Self::url`] reconnect to it).
    pub async fn start_again(&self) -> Result<(), ClusterError> {
        self.pg_ctl_start().await
    }

    async fn init(&self, password_file: &Path) -> Result<(), ClusterError> {
        fs::create_dir_all(&self.data_dir).map_err(|e| io(&self.data_dir, e))?;
        fs::set_permissions(&self.data_dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| io(&self.data_dir, e))?;
        fs::write(password_file, crate::secrets::random_secret())
            .map_err(|e| io(password_file, e))?;
        fs::set_permissions(password_file, fs::Permissions::from_mode(0o600))
            .map_err(|e| io(password_file, e))?;
        if let Some(user) = &self.run_as {
            for path in [&self.data_dir, &password_file.to_path_buf()] {
                nix::unistd::chown(path.as_path(), Some(user.uid), Some(user.gid))
                    .map_err(|e| io(path, e.into()))?;
            }
        }
        let pwfile = format!("--pwfile={}", password_file.display());
        let pgdata = format!("--pgdata={}", self.data_dir.display());
        self.run(
            "initdb",
            &[
                &pgdata,
                "--username=postgres",
                &pwfile,
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            ],
        )
        .await?;
        // Listen on loopback only, no Unix socket (its path would depend on
        // where the project lives), and never let an idle transaction stall
        // the projectors' snapshot horizon for long.
        let conf = self.data_dir.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf).map_err(|e| io(&conf, e))?;
        text.push_str(
            "\n# Set by shop for its private cluster\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = ''\n\
             max_connections = 300\n\
             idle_in_transaction_session_timeout = '60s'\n",
        );
        fs::write(&conf, text).map_err(|e| io(&conf, e))?;
        Ok(())
    }

    /// The port of a postmaster already running on this data folder, if any.
    /// A `postmaster.pid` left behind by a crashed server is removed.
    async fn running_port(&self) -> Result<Option<u16>, ClusterError> {
        let pid_file = self.data_dir.join("postmaster.pid");
        if !pid_file.exists() {
            return Ok(None);
        }
        match status(&self.bin_dir, &self.data_dir, self.run_as.as_ref()).await? {
            ServerStatus::Running => {}
            ServerStatus::NotRunning => {
                tracing::warn!(path = %pid_file.display(), "removing a stale postmaster.pid");
                fs::remove_file(&pid_file).map_err(|e| io(&pid_file, e))?;
                return Ok(None);
            }
        }
        {
            let text = fs::read_to_string(&pid_file).map_err(|e| io(&pid_file, e))?;
            // Line 4 of postmaster.pid is the port.
            if let Some(port) = text.lines().nth(3).and_then(|l| l.trim().parse().ok()) {
                return Ok(Some(port));
            }
            Ok(None)
        }
    }

    async fn pg_ctl_start(&self) -> Result<(), ClusterError> {
        let pgdata = format!("--pgdata={}", self.data_dir.display());
        let log = format!("--log={}", self.data_dir.join("server.log").display());
        let options = format!("--options=-p {}", self.port);
        self.run(
            "pg_ctl",
            &["start", "--wait", "--timeout=60", &pgdata, &log, &options],
        )
        .await
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        command_as(&self.bin_dir, program, args, self.run_as.as_ref())
    }

    async fn run(&self, program: &str, args: &[&str]) -> Result<(), ClusterError> {
        run(self.command(program, args), program).await
    }
}

/// Stops a cluster given only its folder (for `shop db stop`).
pub async fn stop(root: &Path) -> Result<(), ClusterError> {
    let bin_dir = find_binaries().ok_or(ClusterError::NoBinaries)?;
    let data_dir = root.join("postgres");
    if !data_dir.join("postmaster.pid").exists() {
        return Ok(());
    }
    // pg_ctl runs in `/` (as the postgres user when we are root).
    let data_dir = data_dir.canonicalize().map_err(|e| io(&data_dir, e))?;
    let run_as = if nix::unistd::geteuid().is_root() {
        nix::unistd::User::from_name(SUPERUSER).ok().flatten()
    } else {
        None
    };
    stop_data_dir(&bin_dir, &data_dir, run_as.as_ref()).await
}

async fn stop_data_dir(
    bin_dir: &Path,
    data_dir: &Path,
    run_as: Option<&nix::unistd::User>,
) -> Result<(), ClusterError> {
    if status(bin_dir, data_dir, run_as).await? == ServerStatus::NotRunning {
        return Ok(());
    }
    let pgdata = format!("--pgdata={}", data_dir.display());
    let cmd = command_as(
        bin_dir,
        "pg_ctl",
        &["stop", "--wait", "--mode=fast", &pgdata],
        run_as,
    );
    run(cmd, "pg_ctl stop").await
}

#[derive(Debug, PartialEq, Eq)]
enum ServerStatus {
    Running,
    NotRunning,
}

/// `pg_ctl status`: exit 0 is running, 3 is not running; anything else is an
/// error (and never a reason to touch `postmaster.pid`).
async fn status(
    bin_dir: &Path,
    data_dir: &Path,
    run_as: Option<&nix::unistd::User>,
) -> Result<ServerStatus, ClusterError> {
    let pgdata = format!("--pgdata={}", data_dir.display());
    // `output()`, not `status()`: the latter closes the pipes and pg_ctl
    // would die of SIGPIPE while printing.
    let out = command_as(bin_dir, "pg_ctl", &["status", &pgdata], run_as)
        .output()
        .await
        .map_err(|e| ClusterError::Command {
            what: "pg_ctl status".to_string(),
            detail: e.to_string(),
        })?;
    match out.status.code() {
        Some(0) => Ok(ServerStatus::Running),
        Some(3) => Ok(ServerStatus::NotRunning),
        _ => Err(ClusterError::Command {
            what: "pg_ctl status".to_string(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }),
    }
}

fn command_as(
    bin_dir: &Path,
    program: &str,
    args: &[&str],
    run_as: Option<&nix::unistd::User>,
) -> Command {
    let program = bin_dir.join(program);
    let mut cmd = match run_as {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.arg("-u").arg(&user.name).arg("--").arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: Ctrl-C in a terminal reaches the shop
        // process, which finishes its requests and then stops PostgreSQL.
        .process_group(0)
        .current_dir("/");
    cmd
}

async fn run(mut cmd: Command, what: &str) -> Result<(), ClusterError> {
    let out = cmd.output().await.map_err(|e| ClusterError::Command {
        what: what.to_string(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if detail.is_empty() {
        detail = String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    Err(ClusterError::Command {
        what: what.to_string(),
        detail,
    })
}

/// Where `initdb` and `pg_ctl` are: `PATH`, then `pg_config --bindir`, then
/// the newest `/usr/lib/postgresql/*/bin` (Debian and Ubuntu keep them there).
pub fn find_binaries() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_both(&dir) {
                // Resolve symlinks so that pg_ctl finds its own postgres.
                let resolved = dir
                    .join("pg_ctl")
                    .canonicalize()
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .unwrap_or(dir);
                if has_both(&resolved) {
                    return Some(resolved);
                }
            }
        }
    }
    if let Ok(out) = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_both(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_both(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Whether something accepts connections on 127.0.0.1:`port` within 5 s.
async fn answers(port: u16) -> bool {
    for _ in 0..25 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    false
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn io(path: &Path, e: std::io::Error) -> ClusterError {
    ClusterError::Io(path.display().to_string(), e)
}
