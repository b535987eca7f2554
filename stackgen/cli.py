"""The command line: parses options and hands over to the package. No work lives here."""

from __future__ import annotations

import sys

import click

from stackgen import __version__
from stackgen.build import DEFAULT_OUT, DEFAULT_SPEC

EXIT_FINDINGS = 1
EXIT_INVALID = 2

spec_arg = click.argument("spec", default=DEFAULT_SPEC, required=False,
                          type=click.Path(dir_okay=False))
out_opt = click.option("--out", "out_dir", default=DEFAULT_OUT, show_default=True,
                       type=click.Path(file_okay=False), help="Output folder.")
strict_opt = click.option("--strict", is_flag=True,
                          help="Treat warnings (e.g. a missing secret file) as errors.")
env_opt = click.option("--env", "env", metavar="NAME",
                       help="Only this environment of the spec's `environments:`.")
format_opt = click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]),
                          default="text", show_default=True, help="How to report problems.")


def _report(problems, fmt="text", strict=False) -> bool:
    """Print problems to stderr (text) or stdout (json/github); True if any is an error."""
    from stackgen.build import strict_warnings
    from stackgen.problems import RENDERERS

    if strict:
        problems = strict_warnings(problems)
    text = RENDERERS[fmt](problems)
    if fmt == "text":
        if text:
            click.echo(text, err=True, nl=False)
    else:
        click.echo(text, nl=False)
    return any(p.is_error for p in problems)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stackgen")
def main():
    """Compile one KPI spec into a Prometheus, Alertmanager and Grafana stack."""


@main.command()
@spec_arg
@out_opt
@strict_opt
@env_opt
@click.option("--no-secrets", is_flag=True,
              help="Do not create missing secret files (random, mode 0600).")
def build(spec, out_dir, strict, env, no_secrets):
    """Validate SPEC and write the stack's configuration to --out (each environment of
    the spec to --out/<environment>)."""
    from stackgen import build as b

    res = b.build(spec, out_dir, strict=strict, create_secrets=not no_secrets, env=env)
    if _report(res.problems, strict=strict) or res.failed:
        if any(p.is_error and p.check == "output/write" for p in res.problems):
            click.echo(f"stackgen: writing {out_dir} failed part way", err=True)
        elif any(p.is_error and p.check.startswith("output/") for p in res.problems):
            click.echo(f"stackgen: cannot write {out_dir!r}; nothing was written", err=True)
        else:
            click.echo(f"stackgen: {spec} is invalid; nothing was written", err=True)
        sys.exit(EXIT_INVALID)
    for path in res.secrets_created:
        click.echo(f"created secret placeholder {path} (mode 0600, git-ignored): "
                   "replace its content with the real value", err=True)
    click.echo(f"built {out_dir}/ from {spec}: {len(res.artifacts)} files, "
               f"{len(res.written)} written, {len(res.removed)} removed")


@main.command()
@spec_arg
@out_opt
@strict_opt
@env_opt
@format_opt
@click.option("--diff", "show_diff", is_flag=True,
              help="Print a unified diff (on disk -> generated) of each stale file.")
def lint(spec, out_dir, strict, env, fmt, show_diff):
    """Validate SPEC and check that --out is exactly what `build` would write."""
    from stackgen import build as b

    res = b.lint(spec, out_dir, strict=strict, env=env, diffs=show_diff)
    invalid = any(p.is_error and not p.check.startswith("lint/") for p in res.problems)
    failed = _report(res.problems, fmt, strict)
    for text in res.diffs:
        click.echo(text, nl=False)
    if invalid:
        sys.exit(EXIT_INVALID)
    if failed:
        sys.exit(EXIT_FINDINGS)
    if fmt == "text":
        click.echo(f"{out_dir}/ is up to date with {spec}", err=True)


@main.command()
@out_opt
@env_opt
def check(out_dir, env):
    """Run promtool, amtool and Docker Compose on the generated files (on each
    environment's folder when --out holds the environments of a spec)."""
    from stackgen import check as c
    from stackgen.spec.environments import stack_folders

    folders, error = stack_folders(out_dir, env)
    if error:
        click.echo(f"stackgen check: {error}", err=True)
        sys.exit(EXIT_INVALID)
    counts = {"passed": 0, "failed": 0}

    def show(step):  # as each step finishes: a long check is seen to move
        click.echo(f"{'PASS' if step.ok else 'FAIL'}  {step.name}")
        if step.note:
            click.echo(f"      note: {step.note}")
        if not step.ok and step.output:
            for line in step.output.splitlines():
                click.echo(f"      {line}")
        sys.stdout.flush()
        counts["passed" if step.ok else "failed"] += 1

    for folder in folders:
        if folder != out_dir:
            click.echo(f"== {folder}/")
        c.run_all(folder, on_step=show)
    passed, failed = counts["passed"], counts["failed"]
    click.echo(f"{passed} passed, {failed} failed")
    if failed:
        sys.exit(EXIT_FINDINGS)


@main.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="Write it to this file instead (e.g. specs/stackgen.schema.json, which a "
                   "`# yaml-language-server: $schema=./stackgen.schema.json` line names).")
def schema(output):
    """Print the spec's JSON Schema (draft 2020-12), for editors."""
    from stackgen.spec.schema import schema_text

    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(schema_text())
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(schema_text(), nl=False)


@main.command()
@spec_arg
@env_opt
def images(spec, env):
    """List the container images SPEC pins, and whether a newer release is known."""
    import os

    from stackgen import images as I

    pinned = dict(I.DEFAULT_IMAGES)
    if os.path.exists(spec):
        from stackgen.problems import SpecError
        from stackgen.spec import load_all

        try:
            found = load_all(spec, env=env)
        except SpecError as exc:
            _report(exc.problems)
            sys.exit(EXIT_INVALID)
        pinned = vars(found[0][1].stack.images)
    click.echo(f"{'image':<14} {'pinned':<44} {'newest known':<13} status")
    for comp, ref, newest, status, note in I.report(pinned):
        click.echo(f"{comp:<14} {ref:<44} {newest:<13} {status}" + (f"  ({note})" if note
                                                                       else ""))
    click.echo(f"newest known: as seen upstream on {I.CHECKED}; look for newer releases at:")
    for comp, (_, url, _) in I.UPSTREAM.items():
        click.echo(f"  {comp:<14} {url}")


@main.command()
@click.argument("topic", default="spec", type=click.Choice(["spec", "runtime", "helm"]))
@click.option("--path", "show_path", is_flag=True, help="Print the page's file path only.")
def docs(topic, show_path):
    """Print a reference page: spec (default), runtime or helm (Markdown)."""
    from stackgen import docs as d

    found = d.path(topic)
    if found is None:
        click.echo(f"stackgen docs: the {topic} page is not installed", err=True)
        sys.exit(EXIT_INVALID)
    if show_path:
        click.echo(found)
        return
    with open(found, encoding="utf-8") as fh:
        click.echo(fh.read(), nl=False)


@main.command()
@click.argument("spec", default=DEFAULT_SPEC, required=False, type=click.Path(dir_okay=False))
@click.option("--name", default="my-stack", show_default=True, help="Stack name.")
@click.option("--force", is_flag=True, help="Overwrite an existing spec.")
def init(spec, name, force):
    """Write a starter SPEC and git-ignored secret placeholders."""
    from stackgen import starter

    try:
        made = starter.init(spec, name, force)
    except starter.InitError as exc:
        click.echo(f"stackgen: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    for path in made:
        click.echo(f"wrote {path}")
    click.echo(f"next: `stackgen build {spec}` writes generated/, `docker compose up` runs it; "
               "`stackgen docs` is the spec's reference (`stackgen docs --path` says where it "
               "is)")


@main.command()
@spec_arg
@out_opt
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Keep runtime configs, data and logs here (default: a temp folder, removed "
                   "on exit).")
@click.option("--prometheus-port", type=int, default=9090, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--alertmanager-port", type=int, default=9093, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--node-exporter-port", type=int, default=9100, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--demo", is_flag=True,
              help="Scrape a demo exporter (realistic values, incidents on demand) instead "
                   "of the spec's targets; notifications go to local sinks.")
@click.option("--real-receivers", is_flag=True,
              help="With --demo: send notifications to the spec's real receivers.")
@env_opt
def up(spec, out_dir, data_dir, prometheus_port, alertmanager_port, node_exporter_port, demo,
       real_receivers, env):
    """Run the generated stack natively on 127.0.0.1 until Ctrl-C (no Docker)."""
    import os

    from stackgen.runtime.native import Ports, up as run_up
    from stackgen.spec import select_environment

    if env:
        select_environment(env)
        out_dir = os.path.join(out_dir, env)
    ports = Ports(prometheus_port, alertmanager_port, node_exporter_port)
    sys.exit(run_up(spec, out_dir, data_dir, ports, demo=demo, echo=click.echo,
                    real_receivers=real_receivers))


@main.command()
@spec_arg
@click.option("--port", type=int, default=0,
              help="First port on 127.0.0.1; each further target takes the next (0: free "
                   "ports).")
@click.option("--json", "as_json", is_flag=True, help="Print the endpoints as one JSON line.")
@env_opt
def demo(spec, port, as_json, env):
    """Serve every metric SPEC's KPIs read (healthy values, incidents on demand) until Ctrl-C."""
    from stackgen.runtime.demo_exporter import serve
    from stackgen.spec import select_environment

    select_environment(env)
    sys.exit(serve(spec, port, as_json, echo=click.echo))


@main.command()
@spec_arg
@click.option("--keep", type=click.Path(file_okay=False),
              help="Build, run and keep everything in this folder (default: a temp folder).")
@click.option("--sabotage", hidden=True, metavar="rule[:GROUP/KPI]|route|panel",
              help="Break the built files on purpose (tests).")
@click.option("--only", hidden=True,
              help="Comma-separated incidents to run (group/kpi, group/down), or 'none'.")
@env_opt
def smoke(spec, keep, sabotage, only, env):
    """Build SPEC for test, run it natively and check every target, rule, panel and alert."""
    import tempfile

    from stackgen.runtime import smoke as s
    from stackgen.spec.environments import materialize

    if env:  # the smoke test rewrites the spec's data: give it the environment's own spec
        spec, problems = materialize(spec, env, tempfile.mkdtemp(prefix="stackgen-env-"))
        if _report(problems):
            sys.exit(EXIT_INVALID)

    chosen = None if only is None else [x for x in only.split(",") if x and x != "none"]
    sys.exit(s.main(spec, sabotage_kind=sabotage, only=chosen, keep=keep, echo=click.echo))


if __name__ == "__main__":
    main()
