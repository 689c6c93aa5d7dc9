//! Prints the running containers, then container starts and exits as the capture would see them:
//! `cargo run -p mamori-docker --example watch`.

use std::sync::Arc;

use mamori_docker::{follow, ContainerDirectory, ContainerEvent, DockerClient};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let client = match DockerClient::connect().await {
        Ok(client) => client,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let dir = Arc::new(ContainerDirectory::new());
    let result = follow(client, dir, |event| match event {
        ContainerEvent::Started(c) => println!(
            "started {} {} image={} pid={:?} cgroup_id={:?}",
            &c.id[..12.min(c.id.len())],
            c.name,
            c.image,
            c.pid,
            c.cgroup_id
        ),
        ContainerEvent::Stopped { id } => println!("stopped {}", &id[..12.min(id.len())]),
    })
    .await;
    if let Err(e) = result {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
