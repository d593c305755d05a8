"""The mutations scripts/mutation_run.py applies: one protection turned off each.

Each names the protection, the file, the exact text (found exactly once) and
its replacement, and the few tests that must fail without it. Keep the
selections small: the whole run should stay within about twenty minutes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    name: str
    protection: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    # Why no test can fail without it (another layer stops the same thing in
    # every case), for the few mutations that change nothing observable.
    equivalent: str = ""


FIREWALL = "src/joblet/network/firewall.py"
SECCOMP = "src/joblet/isolation/seccomp.py"
CHILD = "src/joblet/isolation/child.py"
CAPS = "src/joblet/isolation/caps.py"
ROOTFS = "src/joblet/isolation/rootfs.py"
SEALED = "src/joblet/isolation/sealed.py"
ROLES = "src/joblet/security/roles.py"
INTERCEPTOR = "src/joblet/security/interceptor.py"

NET_ISOLATION = "tests/integration/test_network_isolation.py"
FIREWALL_IPV6 = "tests/privileged/network/test_network_firewall_ipv6.py"
BLOCKED_CALLS = "tests/security/test_blocked_calls.py"
NAMESPACES = "tests/security/test_namespace_creation.py"
HARDENING = "tests/privileged/isolation/test_launcher_hardening.py"
ROOTFS_TESTS = "tests/privileged/isolation/test_launcher_rootfs.py"
SECCOMP_RULES = "tests/security/test_seccomp_rules.py"
SECCOMP_FILTER = "tests/unit/isolation/test_seccomp_filter.py"
MOUNT_FLAGS = "tests/security/test_mount_flags.py"
HOST_INODES = "tests/security/test_host_inodes.py"
AUTH_UNIT = "tests/unit/security/test_auth_interceptor.py"
CAPS_TEST = f"{HARDENING}::test_capabilities_are_the_default_set"


def _firewall() -> list[Mutation]:
    return [
        Mutation(
            "fw-source-spoofing",
            "nft: a job sends only from its network's addresses",
            FIREWALL,
            "        *[f'iifname \"{n.iface}\" ip saddr != {n.cidr} drop' for n in nets],\n",
            "",
            ("tests/privileged/network/test_network_firewall_spoofing.py",),
        ),
        Mutation(
            "fw-link-local",
            "nft: jobs never reach 169.254.0.0/16 (cloud metadata)",
            FIREWALL,
            'f"iifname {ours} ip daddr 169.254.0.0/16 drop",',
            "",
            (f"{NET_ISOLATION}::test_jobs_cannot_reach_link_local_addresses",),
        ),
        Mutation(
            "fw-ipv6-from-jobs",
            "nft: no IPv6 forwarded from a job",
            FIREWALL,
            'f"iifname {ours} meta nfproto ipv6 drop",',
            "",
            (FIREWALL_IPV6,),
        ),
        Mutation(
            "fw-ipv6-to-jobs",
            "nft: no IPv6 forwarded to a job",
            FIREWALL,
            'f"oifname {ours} meta nfproto ipv6 drop",',
            "",
            (FIREWALL_IPV6,),
            "an IPv6 packet to a job is new (dropped by `oifname <prefix>* drop`) or "
            "belongs to a connection, and none forms: all IPv6 from jobs is dropped",
        ),
        Mutation(
            "fw-between-networks",
            "nft: no traffic between joblet networks or isolated jobs",
            FIREWALL,
            'f"iifname {ours} oifname {ours} drop",',
            "",
            (
                f"{NET_ISOLATION}::test_custom_network_is_closed_to_another_custom_network",
                f"{NET_ISOLATION}::test_isolated_jobs_reach_no_other_job_and_none_reach_them",
            ),
            "a connection between two joblet networks is new where it is forwarded, "
            "and `oifname <prefix>* drop` after it drops every new one to a job (an ICMP "
            "error forged to look related needs CAP_NET_RAW, which jobs lack)",
        ),
        Mutation(
            "fw-outside-to-job",
            "nft: nothing outside opens a connection to a job",
            FIREWALL,
            'f"oifname {ours} drop",',
            "",
            (f"{NET_ISOLATION}::test_outside_cannot_open_a_connection_to_a_job",),
        ),
        Mutation(
            "fw-input-to-host",
            "nft: jobs never connect to the host's own addresses",
            FIREWALL,
            'f"iifname {ours} drop"]',
            "]",
            (f"{NET_ISOLATION}::test_jobs_cannot_reach_the_daemon_on_its_host_addresses",),
        ),
    ]


# Groups of BLOCKED_SYSCALLS, each taken out of the filter in turn.
SYSCALL_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("unshare-setns", ("unshare", "setns")),
    ("keys", ("keyctl", "add_key", "request_key")),
    ("bpf", ("bpf",)),
    ("perf-event-open", ("perf_event_open",)),
    ("userfaultfd", ("userfaultfd",)),
    ("kexec", ("kexec_load", "kexec_file_load")),
    ("modules", ("init_module", "finit_module", "delete_module")),
    ("mount-api", ("mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen",
                   "fsmount", "fsconfig", "fspick", "mount_setattr")),
    ("swap-reboot", ("swapon", "swapoff", "reboot")),
    ("file-handles", ("open_by_handle_at", "name_to_handle_at")),
    ("acct", ("acct", "lookup_dcookie")),
    ("ptrace", ("ptrace", "process_vm_readv", "process_vm_writev")),
    ("quotactl", ("quotactl",)),
    ("clock", ("settimeofday", "clock_settime", "clock_adjtime", "adjtimex")),
    ("syslog", ("syslog",)),
    ("io-ports", ("iopl", "ioperm")),
    ("obsolete", ("vhangup", "nfsservctl", "uselib", "sysfs", "_sysctl")),
)  # fmt: skip


def _seccomp() -> list[Mutation]:
    found = [
        Mutation(
            "seccomp-off",
            "the whole seccomp filter",
            CHILD,
            "prep.seccomp_program.install()",
            "pass",
            (CAPS_TEST, SECCOMP_RULES),
        ),
        Mutation(
            "seccomp-io-uring",
            "seccomp: io_uring_setup/enter/register ENOSYS",
            SECCOMP,
            "filt.add_rule(pyseccomp.ERRNO(errno.ENOSYS), name)",
            "pass",
            (SECCOMP_RULES,),
        ),
        Mutation(
            "seccomp-vsock",
            "seccomp: socket(AF_VSOCK) EAFNOSUPPORT",
            SECCOMP,
            '"socket", pyseccomp.Arg(0, pyseccomp.EQ, AF_VSOCK)',
            '"socket", pyseccomp.Arg(0, pyseccomp.EQ, 9999)',  # a family no one uses
            (SECCOMP_RULES,),
        ),
        Mutation(
            "seccomp-personality",
            "seccomp: personality(2) only harmless values",
            SECCOMP,
            "libc.BpfProgram(personality_prefix(arch, number, sys.byteorder) + code)",
            "libc.BpfProgram(code)",
            (SECCOMP_RULES,),
        ),
        Mutation(
            "seccomp-clone-namespaces",
            "seccomp: clone(2) with CLONE_NEW* flags EPERM",
            SECCOMP,
            'filt.add_rule(eperm, "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, flag, flag))',
            "pass",
            (NAMESPACES, SECCOMP_FILTER),
        ),
        Mutation(
            "seccomp-clone3",
            "seccomp: clone3(2) ENOSYS (its flags are out of seccomp's view)",
            SECCOMP,
            'filt.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")',
            "pass",
            (NAMESPACES, SECCOMP_FILTER),
        ),
    ]
    for group, names in SYSCALL_GROUPS:
        old = "".join(f'    "{name}",\n' for name in names)
        found.append(
            Mutation(
                f"seccomp-{group}",
                f"seccomp: {', '.join(names)} EPERM",
                SECCOMP,
                old,
                "",
                (BLOCKED_CALLS, SECCOMP_FILTER),
            )
        )
    return found


# Capabilities a job must not hold, each put back into the kept set in turn.
DROPPED_CAPS = (
    ("CAP_DAC_READ_SEARCH", 2), ("CAP_LINUX_IMMUTABLE", 9), ("CAP_NET_ADMIN", 12),
    ("CAP_NET_RAW", 13), ("CAP_SYS_MODULE", 16), ("CAP_SYS_RAWIO", 17),
    ("CAP_SYS_PTRACE", 19), ("CAP_SYS_PACCT", 20), ("CAP_SYS_ADMIN", 21),
    ("CAP_SYS_BOOT", 22), ("CAP_SYS_RESOURCE", 24), ("CAP_SYS_TIME", 25),
    ("CAP_SYSLOG", 34), ("CAP_BPF", 39),
)  # fmt: skip


def _caps() -> list[Mutation]:
    old = "        CAP_AUDIT_WRITE,\n    }"
    found = [
        Mutation(
            f"caps-{name[4:].lower().replace('_', '-')}",
            f"{name} dropped",
            CAPS,
            old,
            f"        CAP_AUDIT_WRITE,\n        {number},  # {name}\n    }}",
            (CAPS_TEST,),
        )
        for name, number in DROPPED_CAPS
    ]
    found += [
        Mutation(
            "caps-bounding-set",
            "capabilities removed from the bounding set",
            CHILD,
            "libc.capbset_drop_all(prep.caps_to_drop)",
            "pass",
            (CAPS_TEST,),
        ),
        Mutation(
            "caps-capset",
            "effective/permitted capabilities cut to the kept set",
            CHILD,
            "libc.capset(prep.caps_keep_mask, prep.caps_keep_mask, 0)",
            "pass",
            (CAPS_TEST,),
            "exec recomputes a root process's permitted and effective sets from the "
            "bounding set (capabilities(7)); a job of another uid loses all at setuid",
        ),
        Mutation(
            "no-new-privs",
            "no_new_privs set before exec",
            CHILD,
            "libc.set_no_new_privs()",
            "pass",
            (CAPS_TEST,),
        ),
        Mutation(
            "rlimit-nofile",
            "RLIMIT_NOFILE set while privileged",
            CHILD,
            "resource.setrlimit(resource.RLIMIT_NOFILE, order.nofile)",
            "pass",
            (
                "tests/security/test_risky_defaults.py::test_a_job_opening_too_many_files_gets_emfile",
            ),
        ),
    ]
    return found


def _rootfs() -> list[Mutation]:
    ro = "RO_ATTRS = libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV"
    dev = "DEVICE_ATTRS = libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NOEXEC"
    tmp = 'Mount("tmpfs", tmp, "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, size)'
    return [
        Mutation("rootfs-binds-ro", "allowed mounts are read-only binds", ROOTFS, ro,
                 ro.replace("libc.MOUNT_ATTR_RDONLY | ", ""),
                 (f"{ROOTFS_TESTS}::test_allowed_mounts_are_read_only", MOUNT_FLAGS)),
        Mutation("rootfs-binds-nosuid", "allowed mounts are nosuid", ROOTFS, ro,
                 ro.replace(" | libc.MOUNT_ATTR_NOSUID", ""), (ROOTFS_TESTS, MOUNT_FLAGS)),
        Mutation("rootfs-binds-nodev", "allowed mounts are nodev", ROOTFS, ro,
                 ro.replace(" | libc.MOUNT_ATTR_NODEV", ""), (ROOTFS_TESTS, MOUNT_FLAGS)),
        Mutation("rootfs-root-ro", "the job's / is read-only", CHILD,
                 "(0 if order.writable_root else libc.MOUNT_ATTR_RDONLY)", "0",
                 (ROOTFS_TESTS, MOUNT_FLAGS)),
        Mutation("rootfs-dev-binds-ro", "device nodes and /proc masks are read-only binds",
                 ROOTFS, dev, dev.replace("libc.MOUNT_ATTR_RDONLY | ", ""),
                 (f"{HOST_INODES}::test_device_nodes_and_proc_masks_are_read_only_binds",)),
        Mutation("rootfs-dev-binds-nosuid", "device binds are nosuid", ROOTFS, dev,
                 dev.replace(" | libc.MOUNT_ATTR_NOSUID", ""), (HOST_INODES, MOUNT_FLAGS)),
        Mutation("rootfs-dev-binds-noexec", "device binds are noexec", ROOTFS, dev,
                 dev.replace(" | libc.MOUNT_ATTR_NOEXEC", ""), (HOST_INODES, MOUNT_FLAGS)),
        Mutation("rootfs-tmp-flags", "/tmp is nosuid,nodev", ROOTFS, tmp,
                 tmp.replace("libc.MS_NOSUID | libc.MS_NODEV", "0"), (ROOTFS_TESTS, MOUNT_FLAGS)),
        Mutation("rootfs-dev-tmpfs-flags", "/dev and /dev/shm are nosuid,nodev,noexec", ROOTFS,
                 "tmpfs_flags = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC",
                 "tmpfs_flags = 0", (ROOTFS_TESTS, MOUNT_FLAGS)),
        Mutation("rootfs-devpts-flags", "/dev/pts is nosuid,noexec", ROOTFS,
                 "pts_flags = libc.MS_NOSUID | libc.MS_NOEXEC", "pts_flags = 0",
                 (ROOTFS_TESTS, MOUNT_FLAGS)),
        Mutation("rootfs-work-flags", "/work is nosuid,nodev", ROOTFS,
                 "Protect(work, libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV)",
                 "Protect(work, 0)", (ROOTFS_TESTS, MOUNT_FLAGS),
                 equivalent="the workspace is bound from ROOT/workspaces, mounted "
                 "nosuid,nodev (workspace-mount-flags), or from ROOT/jobs, which the daemon "
                 "binds nosuid,nodev on the host (jobs-dir-nosuid-nodev), and a bind takes "
                 "its source mount's flags"),
        Mutation("rootfs-proc-flags", "/proc is nosuid,nodev,noexec", ROOTFS,
                 "flags = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC\n"
                 '    p.ops.append(Mount("proc", proc, "proc", flags))',
                 'flags = 0\n    p.ops.append(Mount("proc", proc, "proc", flags))',
                 (ROOTFS_TESTS, MOUNT_FLAGS)),
        Mutation("rootfs-proc-masks", "/proc/kcore, keys, slabinfo... masked by /dev/null",
                 ROOTFS,
                 '        p.ops.append(Mount("/dev/null", f"{proc}/{name}", None, libc.MS_BIND,'
                 " optional=True))\n"
                 '        p.ops.append(Protect(f"{proc}/{name}", DEVICE_ATTRS, optional=True))\n',
                 "        pass\n",
                 (f"{HARDENING}::test_sysrq_trigger_is_not_writable", SECCOMP_RULES)),
        Mutation("rootfs-proc-read-only-paths", "/proc/sys, sysrq-trigger... read-only", ROOTFS,
                 "p.ops.append(Protect(path, RO_ATTRS | libc.MOUNT_ATTR_NOEXEC, optional=True))",
                 "pass", (f"{HARDENING}::test_sysrq_trigger_is_not_writable", MOUNT_FLAGS)),
        Mutation("rootfs-volume-flags", "volumes are nosuid,nodev", ROOTFS,
                 "attrs = libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV\n"
                 "        p.ops.append(Protect(target, attrs",
                 "attrs = 0\n        p.ops.append(Protect(target, attrs",
                 ("tests/privileged/volumes/test_volume_job_mounts.py",),
                 equivalent="a bind takes its source mount's flags, and the volume's own "
                 "mount on the host is nosuid,nodev (volume-host-flags)"),
        Mutation("rootfs-volume-read-only", "NAME:ro volumes are read-only", ROOTFS,
                 "(libc.MOUNT_ATTR_RDONLY if read_only else 0)", "0",
                 ("tests/privileged/volumes/test_volume_job_mounts.py",)),
        Mutation("volume-host-flags", "a volume's mount on the host is nosuid,nodev",
                 "src/joblet/volumes/disk.py", "MOUNT_FLAGS = libc.MS_NOSUID | libc.MS_NODEV",
                 "MOUNT_FLAGS = 0", ("tests/privileged/volumes/test_volume_host_flags.py",)),
        Mutation("jobs-dir-nosuid-nodev", "ROOT/jobs bound nosuid,nodev on the host",
                 "src/joblet/jobs/workspace_mount.py",
                 "flags = libc.MS_REMOUNT | libc.MS_BIND | libc.MS_NOSUID | libc.MS_NODEV",
                 "flags = libc.MS_REMOUNT | libc.MS_BIND",
                 ("tests/security/test_workspace_exposure.py::"
                  "test_the_host_ignores_setuid_and_device_nodes_in_workspaces",)),
    ]  # fmt: skip


def _init_binary() -> list[Mutation]:
    sealed_test = f"{HOST_INODES}::test_the_init_runs_from_a_sealed_copy_not_the_hosts_tini"
    return [
        Mutation("sealed-tini-off", "the init runs from a sealed copy, not the host's tini",
                 "src/joblet/isolation/prepare.py",
                 'tini_fd = sealed.sealed_copy(find_tini(), "tini")',
                 "tini_fd = os.open(find_tini(), os.O_RDONLY | os.O_CLOEXEC)", (sealed_test,)),
        Mutation("sealed-immutable-off", "the sealed copy is immutable (metadata)", SEALED,
                 "            _make_immutable(fd)\n", "",
                 (sealed_test, "tests/privileged/isolation/test_sealed_copy.py")),
        Mutation("sealed-seals-off", "the sealed copy's seals (content)", SEALED,
                 "fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)", "pass",
                 ("tests/privileged/isolation/test_sealed_copy.py",)),
    ]  # fmt: skip


def _api() -> list[Mutation]:
    return [
        Mutation("roles-viewer-runjob", "a viewer may not RunJob", ROLES,
                 '        "GetJobStatus",\n', '        "GetJobStatus",\n        "RunJob",\n',
                 (AUTH_UNIT, "tests/security/test_receive_limits.py")),
        Mutation("roles-viewer-anything", "a viewer only reads", ROLES,
                 "return method in VIEWER_METHODS", "return True", (AUTH_UNIT,)),
        Mutation("roles-no-role", "a certificate without a known role may call nothing", ROLES,
                 "        return method in VIEWER_METHODS\n    return False\n",
                 "        return method in VIEWER_METHODS\n    return True\n",
                 (AUTH_UNIT, "tests/unit/security/test_roles.py")),
        Mutation("roles-several-ou", "several OUs name no role", ROLES,
                 "if len(units) != 1:", "if not units:", ("tests/unit/security/test_roles.py",)),
        Mutation("interceptor-role-check", "the interceptor checks the role", INTERCEPTOR,
                 "if caller is None or not is_allowed(caller.role, method):",
                 "if caller is None:", (AUTH_UNIT,)),
        Mutation("interceptor-revocation", "revoked certificates are refused", INTERCEPTOR,
                 "if is_revoked(auth_context, revoked()):", "if False:",
                 ("tests/unit/security/test_audit_trail.py",)),
        Mutation("interceptor-role-before-body", "the role is checked before the body is read",
                 INTERCEPTOR,
                 "        caller = await authorize(context, method, revoked)\n"
                 "        return caller, await read_request("
                 "context, method, deserializer, limit)\n",
                 "        request = await read_request(context, method, deserializer, limit)\n"
                 "        return await authorize(context, method, revoked), request\n",
                 ("tests/security/test_receive_limits.py::"
                  "test_viewer_sending_200_mb_is_denied_before_the_body_is_read",)),
        Mutation("receive-limits", "each method's receive limit (4 MiB)", INTERCEPTOR,
                 "if len(data) > limit:", "if False:",
                 ("tests/security/test_receive_limits.py::test_other_methods_are_held_to_4_mib",)),
        Mutation("tls-client-auth", "TLS requires a client certificate",
                 "src/joblet/security/tls.py",
                 "require_client_auth=True", "require_client_auth=False",
                 ("tests/security/test_tls_refusals.py",)),
        Mutation("request-bounds", "RunJob field bounds", "src/joblet/jobs/validation.py",
                 "    check_request_bounds(req)\n", "",
                 ("tests/security/test_request_bounds_daemon.py",)),
        Mutation("allowed-users", "jobs run only as allowed users", "src/joblet/jobs/users.py",
                 "if allowed is None or run_as in allowed:", "if True:",
                 ("tests/security/test_allowed_users.py",)),
    ]  # fmt: skip


def _workspaces() -> list[Mutation]:
    quota = "tests/security/test_workspace_quota.py"
    return [
        Mutation("seccomp-subvolume-ioctls", "seccomp: no subvolume of a job's own",
                 SECCOMP, "BLOCKED_IOCTLS: tuple[int, ...] = SUBVOLUME_MAKERS",
                 "BLOCKED_IOCTLS: tuple[int, ...] = ()",
                 (f"{quota}::test_a_job_cannot_make_a_subvolume_outside_its_limit",)),
        Mutation("workspace-limit", "each workspace's qgroup limit",
                 "src/joblet/workspaces/store.py",
                 "            btrfs.limit_referenced(str(path), self.quota_bytes)\n", "",
                 (f"{quota}::test_a_job_cannot_write_past_its_limit",)),
        Mutation("workspace-upload-total", "uploads over the limit refused before writing",
                 "src/joblet/jobs/workspace.py",
                 "    if store.quota_bytes and total > store.quota_bytes:", "    if False:",
                 (f"{quota}::test_uploads_past_the_limit_are_refused_and_leave_nothing",)),
        Mutation("workspace-mount-flags", "the workspaces' mount is nosuid,nodev",
                 "src/joblet/workspaces/store.py",
                 "MOUNT_FLAGS = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOATIME",
                 "MOUNT_FLAGS = libc.MS_NOATIME",
                 (f"{quota}::test_the_workspaces_are_private_and_inert_on_the_host",)),
    ]  # fmt: skip


RUNTIME_ROOT = "src/joblet/isolation/runtime_root.py"
RUNTIME_JOBS_TESTS = "tests/integration/test_runtime_jobs.py"
BUILD_SANDBOX = "tests/security/test_runtime_build_sandbox.py"
LAUNCHER_RUNTIME = "tests/privileged/isolation/test_launcher_runtime.py"


def _runtimes() -> list[Mutation]:
    return [
        Mutation("rt-tree-read-only", "a runtime's tree and extra mounts are read-only",
                 RUNTIME_ROOT, "        p.ops.append(Protect(target, RO_ATTRS))\n\n\ndef _overlay",
                 "        pass\n\n\ndef _overlay",
                 (f"{RUNTIME_JOBS_TESTS}::test_nobody_in_the_job_writes_the_runtime",
                  f"{LAUNCHER_RUNTIME}::test_tree_is_read_only_at_opt_runtime")),
        Mutation("rt-resolve-first", "a runtime is resolved before anything is made",
                 "src/joblet/jobs/manager.py",
                 "        mount = runtime_jobs.acquire(self._runtimes, spec, job_id)\n",
                 "        mount = None\n",
                 (f"{RUNTIME_JOBS_TESTS}::test_unknown_runtime_is_not_found_and_leaves_nothing",)),
        Mutation("rt-build-overlays", "a build writes the allowed host directories' overlays",
                 RUNTIME_ROOT, "        p.ops.append(Overlay(target, lower, upper, work))",
                 "        pass",
                 (f"{BUILD_SANDBOX}::test_writes_to_the_system_stay_in_the_build",)),
        Mutation("rt-build-staging-flags", "a build's staging dir is nosuid,nodev", RUNTIME_ROOT,
                 "(staging, libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV)", "(staging, 0)",
                 (f"{BUILD_SANDBOX}::test_staging_is_nosuid_and_nodev",)),
        Mutation("rt-build-src-read-only", "a build's sources are read-only", RUNTIME_ROOT,
                 "    p.ops.append(Protect(src, RO_ATTRS))", "    pass",
                 (f"{BUILD_SANDBOX}::test_sources_are_read_only_and_readable",)),
        Mutation("rt-build-scratch-detached", "a build reaches its scratch only through overlays",
                 RUNTIME_ROOT, "    p.ops.append(Unmount(scratch))", "    pass",
                 (f"{BUILD_SANDBOX}::test_nothing_is_left_mounted_or_running",)),
        Mutation("rt-build-timeout", "a build ends at its own timeout", "src/joblet/jobs/launch.py",
                 "        timeout = rt.timeout_s or self._config.jobs.job_timeout_s",
                 "        timeout = self._config.jobs.job_timeout_s",
                 (f"{BUILD_SANDBOX}::test_timeout_ends_the_build_failed[on]",)),
        Mutation("rt-build-private-mounts", "builds never see the daemon's root or keys",
                 "src/joblet/jobs/runtime_jobs.py", "    if exposed:", "    if False:",
                 ("tests/unit/jobs/test_runtime_jobs.py",)),
        Mutation("rt-env-base-only", "a runtime's ${VAR} comes from the base environment only",
                 "src/joblet/jobs/environment.py", "    base = dict(env)\n",
                 "    base = {**env, **spec.environment, **spec.secret_environment}\n",
                 ("tests/unit/jobs/test_environment.py",)),
    ]  # fmt: skip


STORE = "src/joblet/runtimes/store.py"
VERIFY = "src/joblet/runtimes/verify.py"
INSTALLER = "src/joblet/runtimes/installer.py"
STORE_TESTS = "tests/privileged/runtimes/test_runtime_store.py"
VERIFY_TESTS = "tests/privileged/runtimes/test_runtime_verify.py"
RUNTIMES_DAEMON = "tests/integration/test_runtimes.py"


def _runtime_installs() -> list[Mutation]:
    return [
        Mutation("rti-name-allowlist", "runtime names match the allowlist before any path use",
                 "src/joblet/runtimes/reference.py",
                 'NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")',
                 'NAME_PATTERN = re.compile(r"(?s).{1,300}")',
                 ("tests/unit/runtimes/test_reference.py",)),
        Mutation("rti-spec-targets", "extra mounts never cover /, /proc, /sys, /dev, /work, ...",
                 "src/joblet/runtimes/spec.py",
                 'FORBIDDEN_TARGETS = ("/proc", "/sys", "/dev", "/work", "/tmp", "/volumes", '
                 "RUNTIME_PATH)",
                 "FORBIDDEN_TARGETS = ()", ("tests/unit/runtimes/test_spec.py",)),
        Mutation("rti-verify-special-files", "a built tree holds no device, FIFO or socket",
                 VERIFY, "            if kind is not None:", "            if False:",
                 (f"{VERIFY_TESTS}::test_special_files_fail_the_install",)),
        Mutation("rti-verify-setuid", "setuid/setgid cleared in a built tree", VERIFY,
                 "mode & ~(stat.S_ISUID | stat.S_ISGID)", "mode",
                 (f"{VERIFY_TESTS}::test_setuid_cleared_on_files_already_owned_by_root",)),
        Mutation("rti-verify-owner-no-follow", "a built tree's owners set without following links",
                 VERIFY, "os.chown(name, *owner, dir_fd=dir_fd, follow_symlinks=False)",
                 "os.chown(name, *owner, dir_fd=dir_fd, follow_symlinks=True)",
                 (f"{VERIFY_TESTS}::test_owner_root_setuid_cleared_links_not_followed",)),
        Mutation("rti-verify-max-size", "a built tree is held to runtime.maxSize", VERIFY,
                 "                if size > max_bytes:", "                if False:",
                 (f"{VERIFY_TESTS}::test_over_max_size",)),
        Mutation("rti-remove-in-use", "a runtime a job holds is not removed", STORE,
                 "            if users:\n                raise FailedPrecondition",
                 "            if False:\n                raise FailedPrecondition",
                 (f"{STORE_TESTS}::test_remove_refused_while_pinned_then_frees_du_bytes",)),
        Mutation("rti-one-build-per-name", "one install of a name at a time", STORE,
                 "            if name in self._building:\n                job =",
                 "            if False:\n                job =",
                 (f"{STORE_TESTS}::test_one_build_per_name_and_already_exists",)),
        Mutation("rti-pinned-build-kept", "a reinstall keeps the build a running job holds", STORE,
                 "        return (name, build_id) in self._pins.values()", "        return False",
                 (f"{STORE_TESTS}::test_force_reinstall_keeps_the_pinned_build_until_its_job_ends",)),
        Mutation("rti-staged-test", "an install runs the runtime's test before committing",
                 INSTALLER, "        unusable = self._store.requirement_problem(record)",
                 '        unusable = "untested"',
                 (f"{RUNTIMES_DAEMON}::test_a_failing_test_fails_the_install",)),
        Mutation("rti-build-network", "a build gets no network the config does not allow",
                 INSTALLER,
                 'if network != "none" and network not in self._config.build.networks:',
                 "if False:",
                 (f"{RUNTIMES_DAEMON}::test_a_build_network_the_config_does_not_allow",)),
        Mutation("rti-confined-read", "runtime.yml of an unpacked source read through no link",
                 "src/joblet/runtimes/remote_install.py",
                 "_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC",
                 "_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC",
                 ("tests/unit/runtimes/test_remote_install.py",)),
    ]  # fmt: skip


MUTATIONS: tuple[Mutation, ...] = (
    *_firewall(), *_seccomp(), *_caps(), *_rootfs(), *_init_binary(), *_api(), *_workspaces(),
    *_runtimes(), *_runtime_installs(),
)  # fmt: skip
