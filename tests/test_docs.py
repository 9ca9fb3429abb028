"""The docs stay honest: every command in README.md and docs/*.md names a file that exists and
passes only flags its script's --help lists; every linked image or page exists."""
import functools
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
COMMAND = re.compile(r"(?:python3?|sh|bash)\s+((?:DataPrepare|eval|visualize|script)/[\w./-]+\.(?:py|sh)|main\.py)([^`\n|]*)")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def commands():
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        text = re.sub(r"\\\n\s*", " ", text)                    # join continued shell lines
        for match in COMMAND.finditer(text):
            found.append((page.name, match.group(1), match.group(2)))
    return found


@functools.lru_cache(maxsize=None)
def help_text(script: str) -> str:
    done = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{script} --help failed: {done.stderr[-500:]}"
    return done.stdout


def test_the_docs_have_commands_and_links():
    assert len(commands()) > 20 and all(page.exists() for page in PAGES)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_points_at_a_file(page):
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://")):
            continue
        assert (page.parent / target).exists(), f"{page.name}: link to missing {target}"


def test_every_command_names_a_file():
    missing = [(page, script) for page, script, _ in commands() if not (ROOT / script).exists()]
    assert not missing, missing


@pytest.mark.slow
def test_every_flag_is_one_the_script_lists():
    wrong = []
    for page, script, rest in commands():
        if not script.endswith(".py"):
            continue
        listed = set(re.findall(r"--[\w-]+", help_text(script)))
        for flag in re.findall(r"(?<![\w-])--[a-z][\w-]*", rest):
            if flag not in listed:
                wrong.append((page, script, flag))
    assert not wrong, wrong


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_absolute_machine_paths(page):
    text = page.read_text(encoding="utf-8")
    assert not re.findall(r"/(?:work|root|home)/\w+", text), page.name


def test_the_configuration_reference_is_current():
    """docs/configs.md is exactly what ``python -m configs.reference`` writes from configs/base.py."""
    from configs.reference import documented_fields, reference_markdown
    from configs import valid_keys
    assert [key for _, key, _ in documented_fields()] == valid_keys()        # every key, in order
    assert (ROOT / "docs" / "configs.md").read_text(encoding="utf-8") == reference_markdown(), \
        "docs/configs.md is stale: run python -m configs.reference > docs/configs.md"
