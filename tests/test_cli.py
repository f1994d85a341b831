from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from archiver.cli import cli
from archiver.errors import ExitStatus

from .conftest import FAST_YAML
from .support.newsite import NewsSite, seed_document

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(cli.commands)


def run(root: Path, *args: str, input: str | None = None):
    return CliRunner().invoke(cli, ["--root", str(root), *args], input=input)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself_and_is_documented(command: str, tmp_path: Path) -> None:
    result = run(tmp_path, command, "--help")
    assert result.exit_code == 0
    assert len(cli.commands[command].get_short_help_str()) > 20
    assert f"archiver {command}" in README


def test_top_level_help_lists_every_command(tmp_path: Path) -> None:
    result = run(tmp_path, "--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s", result.output, re.M)


def test_quiet_and_verbose_go_before_or_after_the_command(tmp_path: Path) -> None:
    for args in (["-q", "status"], ["status", "-q"], ["-v", "status"], ["status", "--verbose"]):
        result = run(tmp_path, *args)
        assert result.exit_code == 0 and "no collections" in result.output, args
    assert run(tmp_path, "status", "--loud").exit_code == 2


def test_init_is_safe_to_run_twice(tmp_path: Path) -> None:
    first = run(tmp_path, "init")
    assert first.exit_code == 0 and "created config.yaml" in first.output
    (tmp_path / "config.yaml").write_text((tmp_path / "config.yaml").read_text().replace("workers: 96", "workers: 3"))
    second = run(tmp_path, "init")
    assert second.exit_code == 0 and "created" not in second.output
    assert "workers: 3" in (tmp_path / "config.yaml").read_text()
    for name in ("collections", "seeds"):
        assert (tmp_path / name).is_dir()


def test_config_yaml_documents_every_archiver_key(tmp_path: Path) -> None:
    run(tmp_path, "init")
    text = (tmp_path / "config.yaml").read_text()
    section = text.split("archiver:\n", 1)[1].splitlines()
    keys = [line.split(":")[0] for line in section if line.startswith("  ") and not line.strip().startswith("#")]
    comments = [line for line in section if line.strip().startswith("#")]
    assert len(keys) == len(comments) >= 10


@pytest.mark.parametrize("name", ["../escape", "-dash", "a/b", "spaces here", "", "ünï"])
def test_bad_collection_names_are_refused(name: str, tmp_path: Path) -> None:
    result = run(tmp_path, "capture", "-c", name, "https://example.org/")
    assert result.exit_code == 2
    assert "invalid collection name" in result.output
    assert not (tmp_path / "escape").exists()


def test_config_errors_exit_2(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("archiver:\n  workers: many\n")
    result = run(tmp_path, "capture", "https://example.org/")
    assert result.exit_code == 2 and "archiver.workers must be a whole number" in result.output
    (tmp_path / "config.yaml").write_text("archiver:\n  wrokers: 2\n")
    result = run(tmp_path, "capture", "https://example.org/")
    assert result.exit_code == 2 and "unknown key archiver.wrokers" in result.output


def test_exit_status_is_0_when_all_captured(tmp_path: Path, site: NewsSite) -> None:
    (tmp_path / "config.yaml").write_text(FAST_YAML)
    result = run(tmp_path, "capture", "--allow-private", site.url + "/plain.html")
    assert result.exit_code == 0, result.output
    assert "1 captured, 0 failed" in result.output


def test_failures_exit_1_and_are_listed_by_reason(tmp_path: Path, site: NewsSite) -> None:
    (tmp_path / "config.yaml").write_text(FAST_YAML)
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "ok.txt").write_text(seed_document(site.url + "/plain.html", "t", 1696553101000))
    (seeds / "broken.txt").write_text("[no url here]\n------\n")
    stdin = f"{site.url}/missing-page.html\nnot a url\n"
    result = run(tmp_path, "capture", "--allow-private", "-", str(seeds), input=stdin)
    assert result.exit_code == 1, result.output
    assert "1 captured, 3 failed" in result.output
    assert "http_404: 1" in result.output and "invalid_seed: 2" in result.output
    assert "<stdin>:2" in result.output and "broken.txt" in result.output


def test_capture_default_is_the_roots_seeds_folder(tmp_path: Path, site: NewsSite) -> None:
    (tmp_path / "config.yaml").write_text(FAST_YAML)
    run(tmp_path, "init")
    (tmp_path / "seeds" / "a.txt").write_text(seed_document(site.url + "/plain.html", "t", 1696553101000))
    result = run(tmp_path, "capture", "--allow-private", "-c", "mine")
    assert result.exit_code == 0, result.output
    assert list((tmp_path / "collections" / "mine" / "archive").glob("*.warc.gz"))


def test_export_of_a_missing_collection_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "export", "-c", "nothing")
    assert result.exit_code == 2 and "no metadata index" in result.output


def test_index_of_a_missing_collection_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "index", "-c", "nothing")
    assert result.exit_code == 2 and "no collection 'nothing'" in result.output


def test_demo_captures_the_bundled_site(tmp_path: Path) -> None:
    result = run(tmp_path, "demo", "--no-replay", "--site-port", "0")
    assert result.exit_code == 0, result.output
    assert "5 captured, 0 failed" in result.output
    exported = run(tmp_path, "export", "-c", "demo", "--format", "jsonl").output
    assert "第十届海港灯光节开幕，百艘渔船披彩巡游 - Demo News / 演示新闻" in exported  # the GBK page
    assert exported.count('"lead_image_status": 200, "lead_image_error": ""') == 5


def test_verbose_lists_every_seed_and_quiet_only_problems(tmp_path: Path, site: NewsSite) -> None:
    (tmp_path / "config.yaml").write_text(FAST_YAML)
    urls = [site.url + "/plain.html", site.url + "/gzip.html", site.url + "/missing-page.html"]
    loud = CliRunner().invoke(cli, ["--root", str(tmp_path), "-v", "capture", "--allow-private", *urls])
    assert loud.output.count("captured   http") == 2 and "FAILED     http_404" in loud.output
    quiet = CliRunner().invoke(cli, ["--root", str(tmp_path), "-q", "capture", "--allow-private", *urls])
    assert "captured   http" not in quiet.output and "skipped" not in quiet.output.split("\n\n")[0]
    assert "FAILED     http_404" in quiet.output and "0 captured, 1 failed, 2 already captured" in quiet.output
    assert "\r" not in quiet.output + loud.output  # no live status line when not on a terminal
    index = CliRunner().invoke(cli, ["--root", str(tmp_path), "-v", "index"])
    assert index.exit_code == 0 and "indexing archiver-" in index.output


def test_a_bug_exits_with_the_internal_status_and_a_traceback(tmp_path: Path) -> None:
    """Only archiver's own errors are exit statuses 1-5: anything else is a bug, said as one (6)."""
    code = ("import sys, archiver.status as status\n"
            "def broken(*args, **kwargs): raise RuntimeError('a bug')\n"
            "status.status = broken\n"
            "from archiver.cli import main\n"
            "sys.argv = ['archiver', '--root', sys.argv[1], 'status']\n"
            "main()\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == ExitStatus.INTERNAL == 6
    assert "Traceback" in result.stderr and "RuntimeError: a bug" in result.stderr and "please report" in result.stderr


def test_the_repositorys_config_yaml_is_what_init_writes() -> None:
    """`make run` uses the root at the top of the repository: its config.yaml must not fall behind."""
    from archiver.config import Config
    from archiver.init import config_text

    committed = (Path(__file__).parent.parent / "config.yaml").read_text(encoding="utf-8")
    assert committed == config_text(Config()), "regenerate it: archiver init in an empty folder, copy its config.yaml"


def test_the_readme_documents_every_setting_exit_status_and_link() -> None:
    from archiver import errors
    from archiver.config import CONFIG_KEYS

    settings = README.split("## Settings", 1)[1].split("\n## ", 1)[0]
    for key in CONFIG_KEYS:
        assert re.search(rf"`{key}`", settings), f"README's settings table lacks {key}"
    statuses = README.split("## Exit status", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in statuses.splitlines() if re.match(r"\| \d+ \|", line)]
    assert [int(row.split("|")[1]) for row in rows] == [int(status) for status in ExitStatus]
    table = [line for line in (errors.__doc__ or "").splitlines() if re.match(r"\| \d+ \|", line)]
    assert rows == table, "the exit status tables of README.md and archiver/errors.py differ"
    root = Path(__file__).parent.parent
    for target in re.findall(r"\]\(((?:docs|bench)/[^)#]+)", README):
        assert (root / target).is_file(), f"README links to {target}, which does not exist"
    for doc in (root / "docs").glob("*.md"):
        for target in re.findall(r"\]\(([\w./-]+\.md)", doc.read_text(encoding="utf-8")):
            assert (doc.parent / target).is_file(), f"{doc.name} links to {target}, which does not exist"
