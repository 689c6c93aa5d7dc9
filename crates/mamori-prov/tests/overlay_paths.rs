//! Calls in a container: on overlayfs, a write that copies a file up to the upper layer adds
//! nameless PATH items (`name=(null)`) for what it made there, after the items the call named
//! (seen with Docker 20.10 on Linux 6.x: a `wget -O /tmp/x` open logs PARENT `/tmp/`, CREATE
//! `/tmp/x`, then twelve nameless PARENT/CREATE/DELETE items). The graph must use the named ones.

use mamori_audit::PathItem;
use mamori_prov::testkit::{inet, Ev, Proc, Sim};
use mamori_prov::{build, BuildOptions, Node, Op};

const T0: i64 = 1_796_588_254_000_000_000;

fn nameless(inode: u64, nametype: &str) -> PathItem {
    PathItem {
        item: 0,
        name: None,
        inode: Some(inode),
        dev: Some("fe:00".into()),
        mode: Some(0o40755),
        nametype: nametype.into(),
    }
}

#[test]
fn copy_up_items_without_a_name_are_not_taken_for_the_file() {
    let mut sim = Sim::new(T0);
    let sh = Proc::new(11415, 11343, "/bin/busybox");
    let mut wget = sim.fork(&sh, 11421);
    sim.exec(
        &mut wget,
        "/bin/busybox",
        1081425,
        &["wget", "-O", "/tmp/x", "http://127.0.0.1:18777/x"],
    );
    sim.connect(&mut wget, inet("127.0.0.1", 18777));
    let mut open = Ev::new("openat", &wget)
        .arg(0, 0xffff_ff9c)
        .arg(2, 0o1101) // O_WRONLY|O_CREAT|O_TRUNC
        .exit(4)
        .path("/tmp/", 1081539, "PARENT")
        .path("/tmp/x", 1081874, "CREATE");
    for (inode, t) in [
        (1081446, "PARENT"),
        (1081446, "CREATE"),
        (1081858, "DELETE"),
        (1081858, "CREATE"),
    ] {
        open = open.path_item(nameless(inode, t));
    }
    sim.push(open);
    sim.chmod(&sh, "/tmp/x", 1081874, 0o755);
    let mut unlink = Ev::new("unlinkat", &sh)
        .arg(0, 0xffff_ff9c)
        .path("/tmp/", 1081539, "PARENT")
        .path("/tmp/x", 1081874, "DELETE");
    unlink = unlink.path_item(nameless(1081999, "DELETE"));
    sim.push(unlink);

    let g = build(&sim.events, &BuildOptions::default());
    let files: Vec<&mamori_prov::File> = g.nodes().iter().filter_map(Node::as_file).collect();
    assert!(
        files.iter().all(|f| !f.paths.is_empty()),
        "no nameless file: {files:?}"
    );
    let x = g.files_named("/tmp/x");
    assert_eq!(x.len(), 1);
    let ops: Vec<Op> = g
        .edges()
        .iter()
        .filter(|e| e.dst == x[0])
        .map(|e| e.op)
        .collect();
    assert_eq!(ops, vec![Op::Create, Op::Chmod, Op::Unlink], "{ops:?}");
}
