//! Against the real Docker engine; runs only with `MAMORI_DOCKER_TESTS=1` (needs a running
//! dockerd, the docker CLI and `/bin/busybox` from a static busybox build).
//!
//! No registry is needed: the image is built `FROM scratch` with busybox, and containers run with
//! `--network none`.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mamori_docker::{
    container_id_of_pid, follow, ContainerDirectory, ContainerEvent, DockerClient, Error,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

const IMAGE: &str = "mamori-test-bb";
const WAIT: Duration = Duration::from_secs(20);

/// Runs the docker CLI, bounded by [`WAIT`] (a build gets longer), and returns its trimmed stdout.
async fn docker(args: &[&str]) -> String {
    let limit = if args[0] == "build" { WAIT * 6 } else { WAIT };
    let mut command = tokio::process::Command::new("docker");
    command.args(args).kill_on_drop(true);
    let output = timeout(limit, command.output())
        .await
        .unwrap_or_else(|_| panic!("docker {args:?} timed out"))
        .unwrap_or_else(|e| panic!("cannot run docker {args:?}: {e}"));
    assert!(
        output.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Removes the test's containers and build context however the test ends.
struct Cleanup {
    containers: Vec<String>,
    context: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f"])
            .args(&self.containers)
            .output();
        let _ = std::fs::remove_dir_all(&self.context);
    }
}

/// The container's cgroup-v2 directory, found from the known layouts rather than through the
/// crate's own mountinfo parsing.
fn cgroup_dir_of(id: &str) -> PathBuf {
    let candidates = [
        format!("/sys/fs/cgroup/unified/docker/{id}"),
        format!("/sys/fs/cgroup/docker/{id}"),
        format!("/sys/fs/cgroup/system.slice/docker-{id}.scope"),
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_dir())
        .unwrap_or_else(|| panic!("no cgroup directory for {id} among {candidates:?}"))
}

async fn build_image(context: &PathBuf) {
    std::fs::create_dir_all(context).expect("create build context");
    std::fs::copy("/bin/busybox", context.join("busybox")).expect("copy /bin/busybox");
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
    )
    .expect("write Dockerfile");
    let context = context.to_str().expect("UTF-8 temp dir");
    docker(&["build", "--network", "none", "-q", "-t", IMAGE, context]).await;
}

async fn run_sleeper(name: &str) -> String {
    docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        name,
        IMAGE,
        "sh",
        "-c",
        "while true; do sleep 1; done",
    ])
    .await
}

/// What `follow` reported, in order.
struct Events {
    rx: mpsc::UnboundedReceiver<ContainerEvent>,
    seen: Vec<ContainerEvent>,
}

impl Events {
    /// The next event matching `want`, skipping (but recording) others; fails after [`WAIT`].
    async fn next(&mut self, what: &str, want: impl Fn(&ContainerEvent) -> bool) -> ContainerEvent {
        let found = timeout(WAIT, async {
            while let Some(event) = self.rx.recv().await {
                self.seen.push(event.clone());
                if want(&event) {
                    return Some(event);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(event)) => event,
            Ok(None) => panic!("follow ended before {what}"),
            Err(_) => panic!("no {what} within {WAIT:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_and_follow_real_containers() {
    if std::env::var("MAMORI_DOCKER_TESTS").as_deref() != Ok("1") {
        eprintln!("skipped: set MAMORI_DOCKER_TESTS=1 to run against the Docker engine");
        return;
    }
    let tag = std::process::id();
    let (first, second, quick) = (
        format!("mamori-test-a-{tag}"),
        format!("mamori-test-b-{tag}"),
        format!("mamori-test-quick-{tag}"),
    );
    let cleanup = Cleanup {
        containers: vec![first.clone(), second.clone(), quick.clone()],
        context: std::env::temp_dir().join(format!("mamori-docker-test-{tag}")),
    };
    build_image(&cleanup.context).await;

    let first_id = run_sleeper(&first).await;
    let client = timeout(WAIT, DockerClient::connect())
        .await
        .expect("connect timed out")
        .expect("connect");

    let info = timeout(WAIT, client.inspect(&first))
        .await
        .expect("inspect timed out")
        .expect("inspect");
    assert_eq!(info.id, first_id);
    assert_eq!(info.name, first);
    assert_eq!(info.image, IMAGE);
    assert!(info.image_id.starts_with("sha256:"), "{}", info.image_id);
    let pid = info.pid.expect("a running container has a pid");
    let cgroup_dir = cgroup_dir_of(&first_id);
    let inode = std::fs::metadata(&cgroup_dir)
        .expect("stat cgroup dir")
        .ino();
    assert_eq!(info.cgroup_id, Some(inode), "{}", cgroup_dir.display());
    assert_eq!(container_id_of_pid(pid).as_deref(), Some(first_id.as_str()));

    let running = timeout(WAIT, client.running())
        .await
        .expect("running timed out")
        .expect("running");
    assert!(running.contains(&info), "{first} not among {running:?}");

    let missing = format!("mamori-test-missing-{tag}");
    match timeout(WAIT, client.inspect(&missing))
        .await
        .expect("inspect timed out")
    {
        Err(e @ Error::NoSuchContainer(_)) => {
            assert_eq!(e.to_string(), format!("no container named {missing}"))
        }
        other => panic!("expected NoSuchContainer, got {other:?}"),
    }

    let dir = Arc::new(ContainerDirectory::new());
    let (tx, rx) = mpsc::unbounded_channel();
    let mut events = Events {
        rx,
        seen: Vec::new(),
    };
    let follower = tokio::spawn(follow(client, dir.clone(), move |event| {
        let _ = tx.send(event.clone());
    }));
    // The initial load reports the running container.
    events
        .next(
            "the initial Started",
            |e| matches!(e, ContainerEvent::Started(c) if c.id == first_id),
        )
        .await;
    assert_eq!(
        dir.by_cgroup(inode).map(|c| c.name.clone()),
        Some(first.clone())
    );

    // A container that is gone before it can be inspected must not end the follower.
    docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--name",
        &quick,
        IMAGE,
        "true",
    ])
    .await;

    let second_id = run_sleeper(&second).await;
    let started = events
        .next(
            "Started for the second container",
            |e| matches!(e, ContainerEvent::Started(c) if c.id == second_id),
        )
        .await;
    let ContainerEvent::Started(second_info) = started else {
        unreachable!()
    };
    assert_eq!(second_info.name, second);
    assert_eq!(second_info.image, IMAGE);
    let second_cgroup = second_info.cgroup_id.expect("second container's cgroup id");
    let second_inode = std::fs::metadata(cgroup_dir_of(&second_id))
        .expect("stat cgroup dir")
        .ino();
    assert_eq!(second_cgroup, second_inode);
    assert_eq!(
        dir.by_cgroup(second_cgroup).map(|c| c.id.clone()),
        Some(second_id.clone())
    );
    assert!(dir.cgroup_ids().contains(&second_cgroup));

    // `sh` as PID 1 ignores SIGTERM, so stop escalates to SIGKILL after 1 s.
    docker(&["stop", "-t", "1", &second]).await;
    events
        .next(
            "Stopped for the second container",
            |e| matches!(e, ContainerEvent::Stopped { id } if *id == second_id),
        )
        .await;
    assert!(dir.by_name(&second).is_none());
    assert!(dir.by_cgroup(second_cgroup).is_none());
    assert!(dir.by_name(&first).is_some());

    // Stopped is only reported for containers reported started (not for the quick one).
    for (i, event) in events.seen.iter().enumerate() {
        if let ContainerEvent::Stopped { id } = event {
            let started =
                |e: &ContainerEvent| matches!(e, ContainerEvent::Started(c) if c.id == *id);
            assert!(events.seen[..i].iter().any(started), "{:?}", events.seen);
        }
    }
    assert!(
        !follower.is_finished(),
        "follow ended: {:?}",
        follower.await
    );
    follower.abort();
    drop(cleanup);
}
