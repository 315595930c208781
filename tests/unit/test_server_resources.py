"""Server resources, measured: the parsers on real-looking (and odd) outputs, the thresholds,
containers and volumes mapped to stacks and tenants, the server command's quoting, the latest
results as evidence, and the simulator's stand-in shell."""

from __future__ import annotations

import json
import shlex

import pytest
from django.utils import timezone

from ops.checks import resources
from ops.checks.resources_parse import (
    parse_df,
    parse_docker_stats,
    parse_du,
    parse_free,
    parse_loadavg,
    parse_size,
)
from ops.checks.resources_run import ServerRun, UnsafeServer, run_on, server_argv
from ops.checks.resources_stacks import ContainerOwner, StackIndex, build_index
from ops.models import CheckStatus, HealthCheckResult
from stacks.choices import StackStatus
from stacks.coolify_simulator import server_shell

GIB = 1024**3
MIB = 1024**2

FREE_MODERN = """\
               total        used        free      shared  buff/cache   available
Mem:     16717414400  3521245184  9187700736    12345678  4008468480 12894797824
Swap:     2147479552           0  2147479552
"""
# procps before 3.3.10: no "available" column; the -/+ line says what applications hold.
FREE_OLD = """\
             total       used       free     shared    buffers     cached
Mem:    8254300160 7900000000  354300160          0  300000000 5000000000
-/+ buffers/cache: 2600000000 5654300160
Swap:            0          0          0
"""
DF = """\
Filesystem           1-blocks        Used    Available Capacity Mounted on
udev               8335691776           0   8335691776       0% /dev
tmpfs              1671483392     1630208   1669853184       1% /run
/dev/sda1        105088212992 46283894784  53422907392      47% /
tmpfs              8357412864           0   8357412864       0% /dev/shm
/dev/loop0           66322432    66322432            0     100% /snap/core20/2318
/dev/sda15          109422592     6238208    103184384       6% /boot/efi
/dev/sdb1        536870912000 483183820800 53687091200     91% /mnt/data disk
overlay          105088212992 46283894784  53422907392      47% /var/lib/docker/overlay2/4f1e/merged
proc                        0           0            0        - /proc/sys/fs/binfmt_misc
"""


def stats_line(name: str, cpu: str, usage: str, mem_percent: str, pids: str = "12") -> str:
    """One line of `docker stats --no-stream --format '{{json .}}'`, as Go's encoder writes it."""
    row = {
        "BlockIO": "0B / 0B" if cpu != "--" else "--",
        "CPUPerc": cpu,
        "Container": name[:12],
        "ID": name[:12],
        "MemPerc": mem_percent,
        "MemUsage": usage,
        "Name": name,
        "NetIO": "1kB / 0B" if cpu != "--" else "--",
        "PIDs": pids,
    }
    return json.dumps(row, separators=(",", ":"))


STATS = "\n".join(
    [
        stats_line("cf-agent-acme-llm1-u1", "153.20%", "7.5GiB / 62.8GiB", "11.4%", "31"),
        stats_line("cf-webui-acme-llm1-u1", "0.50%", "512MiB / 2GiB", "25.0%"),
        stats_line("cf-agent-acme-bot1-u2", "--", "-- / --", "--", "--"),  # starting
        "WARNING: No swap limit support",
        stats_line("coolify", "2.00%", "300MiB / 62.8GiB", "1.0%", "40"),
    ]
)


def run(stdout: str = "", error: str = "", server: str = "localhost") -> ServerRun:
    return ServerRun(server=server, host="10.0.0.1", stdout=stdout, error=error)


def free_at(percent: float) -> str:
    total = 100 * GIB
    available = int(total * (100 - percent) / 100)
    return (
        "  total used free shared buff/cache available\n"
        f"Mem: {total} {total - available} 0 0 0 {available}\n"
    )


def df_at(percent: int, mount: str = "/") -> str:
    return f"/dev/sda1 1000 {percent * 10} {1000 - percent * 10} {percent}% {mount}\n"


# --- parsers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5GiB", int(1.5 * GIB)),
        ("512MiB", 512 * MIB),
        ("8g", 8 * GIB),
        ("10kB", 10_000),
        ("0B", 0),
        (" 2 GiB ", 2 * GIB),
        ("--", None),
        ("12 parsecs", None),
        (None, None),
    ],
)
def test_sizes_as_docker_and_compose_write_them(text, expected):
    assert parse_size(text) == expected


def test_free_counts_what_applications_hold_not_the_page_cache():
    memory = parse_free(FREE_MODERN)
    assert memory["total"] == 16717414400
    assert memory["used"] == 16717414400 - 12894797824
    assert memory["used_percent"] == 22.9
    assert memory["swap_total"] == 2147479552 and memory["swap_used"] == 0


def test_old_free_without_available_uses_its_buffers_cache_line():
    memory = parse_free(FREE_OLD)
    assert memory["used"] == 2600000000
    assert memory["used_percent"] == 31.5


def test_free_output_without_a_mem_line_is_not_a_measurement():
    assert parse_free("free: command not found\n") is None
    assert parse_free("") is None


def test_df_keeps_real_disks_and_drops_memory_overlays_snaps_and_kernel_views():
    rows = parse_df(DF)
    assert [(row["mount"], row["used_percent"]) for row in rows] == [
        ("/", 47),
        ("/mnt/data disk", 90),  # df rounds up: 483183820800 / 536870912000 = 90.0
    ]
    assert rows[0]["size"] == 105088212992 and rows[0]["available"] == 53422907392


def test_df_percent_is_rounded_up_like_df_itself():
    [row] = parse_df("/dev/vda1 1000 801 199 81% /\n")
    assert row["used_percent"] == 81
    [row] = parse_df("/dev/vda1 1000 800 199 81% /\n")  # 800 / 999 = 80.08 → 81
    assert row["used_percent"] == 81


def test_docker_stats_rows_with_dashes_and_warnings_in_between():
    rows = {row["name"]: row for row in parse_docker_stats(STATS)}
    assert set(rows) == {
        "cf-agent-acme-llm1-u1",
        "cf-webui-acme-llm1-u1",
        "cf-agent-acme-bot1-u2",
        "coolify",
    }
    assert rows["cf-agent-acme-llm1-u1"]["cpu_percent"] == 153.2
    assert rows["cf-agent-acme-llm1-u1"]["memory_used"] == int(7.5 * GIB)
    assert rows["cf-webui-acme-llm1-u1"]["memory_limit_docker"] == 2 * GIB
    starting = rows["cf-agent-acme-bot1-u2"]
    assert starting["cpu_percent"] is None and starting["memory_used"] is None
    assert starting["pids"] is None


def test_du_lines_with_errors_on_stderr_and_docker_files():
    output = (
        "123456789\t/var/lib/docker/volumes/u1_cf-agent-acme-llm1-models\n"
        "4096\t/var/lib/docker/volumes/backingFsBlockDev\n"
        "du: cannot read directory '/var/lib/docker/volumes/x/_data': Permission denied\n"
        "8192\t/var/lib/docker/volumes/with space/\n"
    )
    assert parse_du(output) == [
        {"name": "u1_cf-agent-acme-llm1-models", "bytes": 123456789},
        {"name": "backingFsBlockDev", "bytes": 4096},
        {"name": "with space", "bytes": 8192},
    ]


def test_loadavg():
    assert parse_loadavg("0.52 0.58 0.59 1/467 12345\n") == {
        "load1": 0.52,
        "load5": 0.58,
        "load15": 0.59,
    }
    assert parse_loadavg("cat: /proc/loadavg: No such file\n") is None


# --- the command per server ------------------------------------------------------------------


def test_server_command_quotes_host_and_command_for_the_remote_shell():
    argv = server_argv(
        "10.0.0.5", "du -s -B1 /var/lib/docker/volumes/*", "ssh root@{host} {command}"
    )
    assert argv == ["ssh", "root@10.0.0.5", "du -s -B1 /var/lib/docker/volumes/*"]
    # A hostile host (Coolify's `ip` field) is refused, never put on a command line.
    with pytest.raises(UnsafeServer):
        server_argv("h; rm -rf /", "free -b", "ssh -o BatchMode=yes root@{host} {command}")
    # Braces of the command (docker's Go template) are not placeholders.
    argv = server_argv("h", "docker stats --format '{{json .}}'", "ssh {host} {command}")
    assert shlex.split(argv[-1]) == ["docker", "stats", "--format", "{{json .}}"]


def test_coolify_user_and_port_can_be_used_too():
    argv = server_argv(
        "10.0.0.5", "free -b", "ssh -p {port} {user}@{host} {command}", user="deploy", port="2222"
    )
    assert argv == ["ssh", "-p", "2222", "deploy@10.0.0.5", "free -b"]


@pytest.mark.parametrize(
    ("host", "user", "port"),
    [
        ("10.0.0.5", "-oProxyCommand=touch /tmp/x", "22"),  # an ssh option, not a login
        ("-oProxyCommand=id", "root", "22"),
        ("10.0.0.5", "root", "22; id"),
        ("10.0.0.5 evil", "root", "22"),
    ],
)
def test_a_server_whose_address_user_or_port_could_be_an_option_is_refused(
    settings, host, user, port
):
    template = "ssh -o BatchMode=yes -p {port} {user}@{host} {command}"
    settings.SERVER_COMMAND = template
    with pytest.raises(UnsafeServer):
        server_argv(host, "free -b", template, user=user, port=port)
    refused = run_on({"name": "evil", "host": host, "user": user, "port": port}, "free -b", 1)
    assert refused.exit_code == -1 and refused.error.startswith("refused: server address")


def test_a_template_without_the_command_gets_it_at_the_end():
    argv = server_argv("10.0.0.5", "free -b", "ssh root@{host}")
    assert argv == ["ssh", "root@10.0.0.5", "free -b"]


def test_the_resource_checks_run_only_with_a_server_command(settings):
    settings.SERVER_COMMAND = ""
    assert not any(spec.enabled() for spec in resources.CHECKS)
    settings.SERVER_COMMAND = "ssh root@{host} {command}"
    assert all(spec.enabled() for spec in resources.CHECKS)


def test_no_server_command_runs_here_through_a_shell(settings):
    settings.SERVER_COMMAND = ""
    assert server_argv("10.0.0.5", "free -b && df -P -B1") == ["sh", "-c", "free -b && df -P -B1"]


# --- server_resources thresholds ------------------------------------------------------------


@pytest.mark.parametrize(
    ("memory", "disk", "status"),
    [
        (50, 40, CheckStatus.OK),
        (86, 40, CheckStatus.WARNING),
        (96, 40, CheckStatus.DOWN),
        (50, 80, CheckStatus.WARNING),
        (50, 90, CheckStatus.DOWN),
    ],
)
def test_server_memory_and_disk_thresholds(settings, memory, disk, status):
    settings.HEALTHCHECK_DISK_WARN_PERCENT = 80
    settings.HEALTHCHECK_DISK_DOWN_PERCENT = 90
    result, message, details = resources.summarise_servers([run(free_at(memory) + df_at(disk))])
    assert result == status, message
    [server] = details["servers"]
    assert server["memory"]["used_percent"] == memory
    assert server["disks"][0]["used_percent"] == disk
    if status != CheckStatus.OK:
        assert "localhost" in message


def test_one_server_not_answering_is_a_warning_naming_it(settings):
    settings.HEALTHCHECK_DISK_WARN_PERCENT = 80
    runs = [run(free_at(20) + df_at(30)), run(error="exit 255: ssh: connect refused", server="b")]
    status, message, details = resources.summarise_servers(runs)
    assert status == CheckStatus.WARNING
    assert "b: not measured (exit 255: ssh: connect refused)" in message
    assert details["servers"][1] == {
        "server": "b",
        "host": "10.0.0.1",
        "error": "exit 255: ssh: connect refused",
    }


def test_no_server_answering_is_down_and_no_server_at_all_a_warning():
    status, message, _ = resources.summarise_servers([run(error="exit 127: sh: free: not found")])
    assert status == CheckStatus.DOWN
    assert message == "Could not measure memory and disk: localhost (exit 127: sh: free: not found)"
    assert resources.summarise_servers([])[0] == CheckStatus.WARNING


# --- containers and volumes mapped to stacks ---------------------------------------------


@pytest.fixture
def stacks(make_stack):
    llm = make_stack("acme", "llm1", template_name="base-llm", coolify_service_uuid="u1")
    bot = make_stack("acme", "bot1", template_name="telegram-bot", coolify_service_uuid="u2")
    gone = make_stack("globex", "old1", coolify_service_uuid="u3", status=StackStatus.DELETED)
    make_stack("globex", "new1")  # not in Coolify yet: nothing on a server
    return llm, bot, gone


@pytest.mark.django_db
def test_containers_are_mapped_to_stacks_with_their_template_limits(stacks):
    index = build_index()
    llm = index.containers["cf-agent-acme-llm1-u1"]
    assert (llm.tenant, llm.stack, llm.service, llm.memory_limit, llm.cpus) == (
        "acme",
        "llm1",
        "llm",
        8 * GIB,
        4.0,
    )
    assert index.containers["cf-webui-acme-llm1-u1"].memory_limit == 2 * GIB
    assert index.containers["cf-agent-acme-bot1-u2"].memory_limit == 1 * GIB
    assert index.volumes["u1_cf-agent-acme-llm1-models"].tenant == "acme"
    assert index.volumes["u3_cf-agent-globex-old1-data"].deleted
    assert not any("new1" in name for name in index.containers)


@pytest.mark.django_db
def test_a_container_above_90_percent_of_its_memory_limit_is_a_warning(stacks):
    status, message, details = resources.summarise_containers([run(STATS)], build_index())
    assert status == CheckStatus.WARNING
    # 7.5 GiB of base-llm's 8g: 93.8 %; the web UI's 512 MiB of 2g is fine.
    assert message.startswith("1 container(s) near their memory limit: acme/llm1 llm at 93.8%")
    rows = {row["name"]: row for row in details["containers"]}
    assert rows["cf-agent-acme-llm1-u1"]["cpu_of_limit_percent"] == 38.3  # 153.2 % of 4 cpus
    assert rows["cf-webui-acme-llm1-u1"]["memory_of_limit_percent"] == 25.0
    assert rows["cf-agent-acme-bot1-u2"]["memory_of_limit_percent"] is None  # "--"
    assert [row["name"] for row in details["others"]] == ["coolify"]
    assert details["totals"]["containers"] == 4 and details["totals"]["cfadmin_containers"] == 3
    assert details["stacks"][0]["stack"] == "llm1" and details["stacks"][0]["containers"] == 2


@pytest.mark.django_db
def test_containers_within_their_limits_are_ok(stacks):
    calm = "\n".join(
        line for line in STATS.splitlines() if 'llm1-u1"' not in line or "webui" in line
    )
    status, message, _ = resources.summarise_containers([run(calm)], build_index())
    assert status == CheckStatus.OK, message
    assert message.startswith("2 cfadmin container(s) within their limits")


@pytest.mark.django_db
def test_volume_sizes_are_summed_per_tenant_kept_volumes_included(stacks):
    output = (
        f"{5 * GIB}\t/var/lib/docker/volumes/u1_cf-agent-acme-llm1-models\n"
        f"{1 * GIB}\t/var/lib/docker/volumes/u1_cf-agent-acme-llm1-webui\n"
        f"{2 * GIB}\t/var/lib/docker/volumes/u2_cf-agent-acme-bot1-data\n"
        f"{3 * GIB}\t/var/lib/docker/volumes/u3_cf-agent-globex-old1-data\n"
        f"{7 * MIB}\t/var/lib/docker/volumes/zz_cf-agent-nobody-x-data\n"
        f"{9 * MIB}\t/var/lib/docker/volumes/coolify-db\n"
        "32768\t/var/lib/docker/volumes/metadata.db\n"
    )
    status, message, details = resources.summarise_volumes([run(output)], build_index())
    assert status == CheckStatus.OK
    assert details["tenants"] == [
        {"tenant": "acme", "bytes": 8 * GIB, "volumes": 3, "stacks": 2},
        {"tenant": "globex", "bytes": 3 * GIB, "volumes": 1, "stacks": 1},
    ]
    assert details["stacks"][0] == {
        "tenant": "acme",
        "stack": "llm1",
        "kept": False,
        "bytes": 6 * GIB,
    }
    assert {"tenant": "globex", "stack": "old1", "kept": True, "bytes": 3 * GIB} in details[
        "stacks"
    ]
    assert details["unmatched"] == [
        {"server": "localhost", "name": "zz_cf-agent-nobody-x-data", "bytes": 7 * MIB}
    ]
    totals = details["totals"]
    assert totals["volumes"] == 6  # metadata.db is Docker's file, not a volume
    assert (totals["cfadmin_bytes"], totals["other_bytes"]) == (11 * GIB, 9 * MIB)
    assert message == (
        "Volumes: 11.0 GiB for 2 tenant(s) (largest: acme 8.0 GiB); "
        "1 cf-agent volume(s) of no stack"
    )


def test_lists_in_details_are_bounded_and_totals_count_all():
    index = StackIndex()
    output = "".join(f"{i}\t/var/lib/docker/volumes/v{i}_cf-agent-t-s-data\n" for i in range(50))
    _, _, details = resources.summarise_volumes([run(output)], index)
    assert len(details["unmatched"]) == resources.TOP
    assert details["unmatched"][0]["bytes"] == 49
    assert details["totals"]["unmatched_volumes"] == 50


# --- evidence for the triage -------------------------------------------------------------------


@pytest.mark.django_db
def test_snapshot_gives_the_latest_stored_result_of_each_check():
    earlier = timezone.now() - timezone.timedelta(minutes=5)
    HealthCheckResult.objects.create(
        check_name="server_resources", status="down", details={"old": 1}, checked_at=earlier
    )
    HealthCheckResult.objects.create(
        check_name="server_resources", status="ok", message="fine", details={"servers": []}
    )
    latest = resources.snapshot()
    assert set(latest) == {"server_resources", "container_resources", "volume_sizes"}
    assert latest["server_resources"]["status"] == "ok"
    assert latest["server_resources"]["details"] == {"servers": []}
    assert latest["container_resources"] is None


# --- the simulator's stand-in shell ------------------------------------------------------------

SNAPSHOT = {
    "services": [
        {
            "uuid": "u1",
            "applications": [
                {"name": "cf-agent-acme-bot1", "status": "running:healthy"},
                {"name": "cf-webui-acme-bot1", "status": "exited"},
            ],
            "databases": [],
        }
    ],
    "containers": ["cf-agent-acme-bot1-u1", "cf-webui-acme-bot1-u1"],
    "volumes": ["u1_cf-agent-acme-bot1-data"],
}


def test_the_shell_reads_the_live_snapshot_and_the_saved_state_alike():
    live = server_shell.from_state(SNAPSHOT)
    saved = server_shell.from_state(
        {
            "volumes": SNAPSHOT["volumes"],
            "docker": {
                "containers": {
                    "cf-agent-acme-bot1-u1": {"state": "running"},
                    "cf-webui-acme-bot1-u1": {"state": "exited"},
                }
            },
        }
    )
    assert live == saved
    assert live.running == ["cf-agent-acme-bot1-u1"]


def test_the_shell_answers_what_the_checks_parse_the_same_every_time():
    view = server_shell.from_state(SNAPSHOT)
    out, err, code = server_shell.answer("free -b && df -P -B1 && cat /proc/loadavg", view)
    assert (err, code) == ("", 0)
    assert out == server_shell.answer("free -b && df -P -B1 && cat /proc/loadavg", view)[0]
    assert 0 < parse_free(out)["used_percent"] < 50
    assert [row["mount"] for row in parse_df(out)] == ["/"]  # overlay, tmpfs, efi left out
    assert parse_loadavg(out) is not None
    stats, _, _ = server_shell.answer("docker stats --no-stream --format '{{json .}}'", view)
    names = [row["name"] for row in parse_docker_stats(stats)]
    assert "cf-agent-acme-bot1-u1" in names and "cf-webui-acme-bot1-u1" not in names
    assert json.loads(stats.splitlines()[0])["Name"] == "coolify"
    sizes, _, _ = server_shell.answer("du -s -B1 /var/lib/docker/volumes/*", view)
    assert "u1_cf-agent-acme-bot1-data" in [row["name"] for row in parse_du(sizes)]


def test_the_shell_refuses_what_it_does_not_know_like_a_shell():
    out, err, code = server_shell.answer("free -b && rm -rf /", server_shell.ServerView())
    assert code == 127 and "rm: not found" in err
    assert parse_free(out) is not None  # what ran before still printed


def test_the_shell_runs_without_django_from_a_saved_state_file(tmp_path, capsys):
    state = tmp_path / "coolify-simulator.json"
    state.write_text(
        json.dumps(
            {
                "volumes": ["u1_cf-agent-acme-bot1-data"],
                "docker": {"containers": {"cf-agent-acme-bot1-u1": {"state": "running"}}},
            }
        )
    )
    code = server_shell.main(["--state", str(state), "du -s -B1 /var/lib/docker/volumes/*"])
    assert code == 0
    assert "u1_cf-agent-acme-bot1-data" in [
        row["name"] for row in parse_du(capsys.readouterr().out)
    ]


def test_the_shell_without_a_simulator_fails_like_ssh_without_a_server(capsys):
    code = server_shell.main(["--url", "", "--token", "t0ken", "free -b"])
    assert code == 255
    err = capsys.readouterr().err
    assert "no simulator" in err and "t0ken" not in err


class FakeCoolify:
    def __init__(self, servers):
        self.servers = servers

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def list_servers(self):
        return self.servers


class FakeContext:
    """What a check gets from ops.health: a Coolify client, a timeout, what was prepared."""

    def __init__(self, servers, prepared=None):
        self.timeout = 5.0
        self.servers = servers
        if prepared is not None:
            self.prepared = prepared

    def coolify(self):
        return FakeCoolify(self.servers)


def test_a_check_runs_the_command_on_every_server_with_the_prepared_index(settings, tmp_path):
    """No database here: the stack index comes from HealthContext.prepared."""
    output = tmp_path / "stats.txt"
    output.write_text(STATS)
    # $0 is the host, $1 the command: each server answers, and says who it was.
    settings.SERVER_COMMAND = f"sh -c 'cat {output}; echo \"$0\" >&2; exit 0' {{host}} {{command}}"
    index = StackIndex()
    index.containers["coolify"] = ContainerOwner(
        tenant="ops", stack="coolify", template="t", service="s", memory_limit=310 * MIB, cpus=1.0
    )
    servers = [{"name": "a", "ip": "10.0.0.1"}, {"name": "b", "ip": "10.0.0.2", "port": 2222}]
    ctx = FakeContext(servers, prepared={"resources": index})

    status, message, details = resources.check_container_resources(ctx)

    assert status == CheckStatus.WARNING  # 300 MiB of 310 MiB: 96.8 %
    assert [s["server"] for s in details["servers"]] == ["a", "b"]
    assert [s["host"] for s in details["servers"]] == ["10.0.0.1", "10.0.0.2"]
    assert details["totals"]["cfadmin_containers"] == 2
    assert "ops/coolify s at 96.8%" in message
