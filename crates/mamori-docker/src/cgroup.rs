//! From a process to its cgroup, its cgroup id and its container id, reading `/proc` only.
//!
//! The cgroup id is the inode number of the process's cgroup-v2 directory: that is what
//! `bpf_get_current_cgroup_id()` returns, so the capture can key events by it. On hybrid
//! cgroup-v1 hosts the v2 hierarchy is mounted at `/sys/fs/cgroup/unified`, on pure v2 hosts at
//! `/sys/fs/cgroup`; the mount is looked up in `/proc/self/mountinfo` rather than assumed.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// The cgroup-v2 path of `pid` (the `0::` line of `/proc/PID/cgroup`), e.g.
/// `/docker/<id>` or `/system.slice/docker-<id>.scope`. `Ok(None)` when the process has no
/// cgroup-v2 line (a pure cgroup-v1 host); an error when the process does not exist.
pub fn cgroup_path_of_pid(pid: u32) -> io::Result<Option<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    Ok(v2_path_from_proc_cgroup(&text).map(str::to_string))
}

/// The cgroup id (inode of the cgroup-v2 directory) of `pid`, as `bpf_get_current_cgroup_id()`
/// reports it for that process's events. `Ok(None)` when there is no cgroup-v2 hierarchy or the
/// process's cgroup lies outside the mount visible here (another cgroup namespace).
pub fn cgroup_id_of_pid(pid: u32) -> io::Result<Option<u64>> {
    let Some(path) = cgroup_path_of_pid(pid)? else {
        return Ok(None);
    };
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
    let Some((root, mountpoint)) = cgroup2_mount_from_mountinfo(&mountinfo) else {
        return Ok(None);
    };
    match cgroup_dir(&root, &mountpoint, &path) {
        Some(dir) => Ok(Some(fs::metadata(dir)?.ino())),
        None => Ok(None),
    }
}

/// The processes in the same cgroup-v2 group as `pid` (its `cgroup.procs`): a container's
/// processes from its main one. Empty when there is no cgroup-v2 hierarchy visible here.
pub fn processes_in_cgroup_of(pid: u32) -> io::Result<Vec<u32>> {
    let Some(path) = cgroup_path_of_pid(pid)? else {
        return Ok(Vec::new());
    };
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
    let Some((root, mountpoint)) = cgroup2_mount_from_mountinfo(&mountinfo) else {
        return Ok(Vec::new());
    };
    let Some(dir) = cgroup_dir(&root, &mountpoint, &path) else {
        return Ok(Vec::new());
    };
    let procs = fs::read_to_string(dir.join("cgroup.procs"))?;
    Ok(procs
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect())
}

/// The 64-hex container id in a cgroup path: the last path component that is either the bare id
/// (`/docker/<id>`, kubepods with the cgroupfs driver) or `<runtime>-<id>[.scope]`
/// (`docker-`, podman's `libpod-`, `cri-containerd-`, `crio-`…). Podman's `libpod-conmon-<id>`
/// is skipped: conmon is the container's monitor, not a process inside it.
pub fn container_id_from_cgroup_path(path: &str) -> Option<&str> {
    path.rsplit('/').find_map(|component| {
        let name = component.strip_suffix(".scope").unwrap_or(component);
        if is_container_id(name) {
            return Some(name);
        }
        let (prefix, id) = name.rsplit_once('-')?;
        (is_container_id(id) && !prefix.ends_with("conmon")).then_some(id)
    })
}

/// The container id of `pid`, from any line of `/proc/PID/cgroup` (the v1 hierarchies name it
/// too, which matters on hosts without cgroup v2). `None` when the process is not in a container
/// or is gone.
pub fn container_id_of_pid(pid: u32) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    container_id_from_proc_cgroup(&text).map(str::to_string)
}

/// Docker, containerd and podman ids are 64 lowercase hex digits (sha256).
fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The path of the `0::PATH` line of a `/proc/PID/cgroup` text.
fn v2_path_from_proc_cgroup(text: &str) -> Option<&str> {
    text.lines().find_map(|line| line.strip_prefix("0::"))
}

/// The first container id named by any `ID:CONTROLLERS:PATH` line.
fn container_id_from_proc_cgroup(text: &str) -> Option<&str> {
    text.lines()
        .filter_map(|line| line.splitn(3, ':').nth(2))
        .find_map(container_id_from_cgroup_path)
}

/// `(root, mount point)` of the first cgroup2 mount in a `/proc/PID/mountinfo` text.
///
/// A line is `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER`;
/// the optional fields vary in number, so the file-system type is found after the ` - `
/// separator rather than at a fixed column.
fn cgroup2_mount_from_mountinfo(text: &str) -> Option<(String, PathBuf)> {
    text.lines().find_map(|line| {
        let (mount, fs) = line.split_once(" - ")?;
        if fs.split(' ').next()? != "cgroup2" {
            return None;
        }
        let mut fields = mount.split(' ').skip(3);
        let root = unescape_octal(fields.next()?);
        let mountpoint = unescape_octal(fields.next()?);
        Some((root, PathBuf::from(mountpoint)))
    })
}

/// The directory of cgroup `path` under a cgroup2 mount of `root` at `mountpoint`; `None` when the
/// path is not below the mount's root (e.g. `/../..` seen from inside a cgroup namespace).
fn cgroup_dir(root: &str, mountpoint: &Path, path: &str) -> Option<PathBuf> {
    let relative = Path::new(path).strip_prefix(root).ok()?;
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    Some(mountpoint.join(relative))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes.get(i + 1..i + 4).and_then(|d| {
            let d = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(d, 8).ok()
        });
        match (bytes[i], escaped) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "cbbb07550708d357855c883c6cc0305faf1823970ba162e0889fb88b87ff8ea6";

    #[test]
    fn docker_on_a_hybrid_v1_host() {
        // /proc/PID/cgroup of a container process under dockerd 20.10 with the cgroupfs driver.
        let text = format!(
            "9:name=systemd:/docker/{ID}\n8:pids:/docker/{ID}\n4:memory:/docker/{ID}\n\
             1:cpu:/docker/{ID}\n0::/docker/{ID}\n"
        );
        assert_eq!(
            v2_path_from_proc_cgroup(&text),
            Some(&*format!("/docker/{ID}"))
        );
        assert_eq!(container_id_from_proc_cgroup(&text), Some(ID));
    }

    #[test]
    fn v1_lines_name_the_container_without_v2() {
        let text = format!("12:pids:/docker/{ID}\n1:name=systemd:/docker/{ID}\n");
        assert_eq!(v2_path_from_proc_cgroup(&text), None);
        assert_eq!(container_id_from_proc_cgroup(&text), Some(ID));
    }

    #[test]
    fn host_process_is_not_in_a_container() {
        let text = "4:memory:/user.slice/user-1000.slice/session-2.scope\n0::/user.slice/user-1000.slice/session-2.scope\n";
        assert_eq!(container_id_from_proc_cgroup(text), None);
        assert_eq!(container_id_from_cgroup_path("/"), None);
        assert_eq!(
            container_id_from_cgroup_path("/system.slice/docker.service"),
            None
        );
    }

    #[test]
    fn runtime_path_layouts() {
        let cases = [
            format!("/system.slice/docker-{ID}.scope"),
            // A container running systemd sees its own init.scope below the container's scope.
            format!("/system.slice/docker-{ID}.scope/init.scope"),
            format!("/machine.slice/libpod-{ID}.scope"),
            format!("/machine.slice/libpod-{ID}.scope/container"),
            format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"),
            format!("/libpod_parent/libpod-{ID}"),
            format!(
                "/kubepods.slice/kubepods-besteffort.slice/\
                 kubepods-besteffort-pod3f1e2c4a_8b6d_4a0e_9c1f_2d7e5b9a6c10.slice/\
                 cri-containerd-{ID}.scope"
            ),
            format!("/kubepods/burstable/pod3f1e2c4a-8b6d-4a0e-9c1f-2d7e5b9a6c10/{ID}"),
            format!("/kubepods.slice/kubepods-pod1.slice/crio-{ID}.scope"),
        ];
        for path in &cases {
            assert_eq!(container_id_from_cgroup_path(path), Some(ID), "{path}");
        }
    }

    #[test]
    fn rejects_conmon_and_non_ids() {
        let conmon = format!("/machine.slice/libpod-conmon-{ID}.scope");
        assert_eq!(container_id_from_cgroup_path(&conmon), None);
        assert_eq!(container_id_from_cgroup_path("/docker/cbbb07550708"), None);
        let upper = format!("/docker/{}", ID.to_uppercase());
        assert_eq!(container_id_from_cgroup_path(&upper), None);
    }

    #[test]
    fn mountinfo_hybrid_unified() {
        // Real lines from a hybrid cgroup-v1 host.
        let text = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        let (root, mountpoint) = cgroup2_mount_from_mountinfo(text).expect("cgroup2 line");
        assert_eq!(root, "/");
        assert_eq!(mountpoint, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(
            cgroup_dir(&root, &mountpoint, &format!("/docker/{ID}")),
            Some(PathBuf::from(format!("/sys/fs/cgroup/unified/docker/{ID}")))
        );
    }

    #[test]
    fn mountinfo_pure_v2_with_optional_fields() {
        // systemd hosts tag mounts with optional fields (`shared:N`) before the separator.
        let text = "\
24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
28 24 0:25 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
        let (root, mountpoint) = cgroup2_mount_from_mountinfo(text).expect("cgroup2 line");
        assert_eq!(
            (root.as_str(), mountpoint.as_path()),
            ("/", Path::new("/sys/fs/cgroup"))
        );
        assert_eq!(
            cgroup_dir(
                &root,
                &mountpoint,
                &format!("/system.slice/docker-{ID}.scope")
            ),
            Some(PathBuf::from(format!(
                "/sys/fs/cgroup/system.slice/docker-{ID}.scope"
            )))
        );
    }

    #[test]
    fn cgroup_dir_respects_mount_root_and_namespaces() {
        let mountpoint = Path::new("/sys/fs/cgroup");
        // A mount of a subtree: paths are relative to its root.
        assert_eq!(
            cgroup_dir("/docker", mountpoint, &format!("/docker/{ID}")),
            Some(PathBuf::from(format!("/sys/fs/cgroup/{ID}")))
        );
        assert_eq!(cgroup_dir("/docker", mountpoint, "/system.slice"), None);
        // Seen from inside a cgroup namespace, outside processes have `..` paths.
        assert_eq!(cgroup_dir("/", mountpoint, "/../../user.slice"), None);
        assert_eq!(
            cgroup_dir("/", mountpoint, "/"),
            Some(mountpoint.to_path_buf())
        );
    }

    #[test]
    fn mountinfo_escapes_and_absence() {
        let text = "50 31 0:40 / /mnt/cg\\040two rw - cgroup2 none rw\n";
        let (_, mountpoint) = cgroup2_mount_from_mountinfo(text).expect("cgroup2 line");
        assert_eq!(mountpoint, Path::new("/mnt/cg two"));
        let v1_only = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(cgroup2_mount_from_mountinfo(v1_only), None);
    }

    #[test]
    fn own_process_resolves() {
        // Whatever the host layout, our own cgroup directory exists when v2 is mounted.
        let pid = std::process::id();
        let path = cgroup_path_of_pid(pid).expect("read /proc/self/cgroup");
        if path.is_some() {
            let id = cgroup_id_of_pid(pid).expect("stat own cgroup");
            assert_ne!(id, Some(0));
        }
    }
}
