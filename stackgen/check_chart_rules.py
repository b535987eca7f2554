"""The chart's rule groups and the Compose stack's rule tests (`stackgen check`).

The chart's PrometheusRules wrap the very rule files of prometheus/rules/, whose tests
`promtool test rules` runs anyway. Running every test a second time against the rendered
groups (what `check` did before) doubled the cost of `check` for nothing when the groups are
the same: so they are compared as data, file by file, and promtool runs only the tests of
files whose rendered groups differ (a hand edit, a template bug), where it names the failing
cases as for the Compose stack.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile

from stackgen import promtool_tests
from stackgen.check import Step, _rule_test_step, failed_promtool_cases


def compose_rule_files(out_dir: str) -> dict:
    """{file name: its data} of the rule files in `out_dir`/prometheus/rules/."""
    return _load_rule_files(os.path.join(out_dir, "prometheus", "rules"))


def _load_rule_files(folder: str) -> dict:
    """{file name: its data} of the rule files in `folder`."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out = {}
    for path in glob.glob(os.path.join(folder, "*.yml")):
        with open(path, encoding="utf-8") as fh:
            out[os.path.basename(path)] = yaml.load(fh, Loader=loader)
    return out


def differing_rule_files(compose: dict, rendered: dict) -> list[str]:
    """The rule files whose groups differ as data between prometheus/rules/ and the chart's
    rendered PrometheusRules (a file on one side only differs)."""
    return sorted(name for name in set(compose) | set(rendered)
                  if compose.get(name) != rendered.get(name))


def chart_rule_tests(tmp: str, tests: list, promtool: str, label: str, differ: list) -> Step:
    """The Compose stack's rule tests against the chart's rule groups: proven by comparison
    where the chart renders the very rule groups of prometheus/rules/ (the tests ran on
    those), run by promtool against the rendered files that differ (`differ`, written to
    tmp/rules/)."""
    name = f"promtool test rules ({label} PrometheusRules, {len(tests)} files)"
    if not differ:
        return Step(name, True, [], note=(
            "the chart renders the very rule groups of prometheus/rules/ (compared file by "
            "file as data), which `promtool test rules` tested above"))
    wanted = {n[:-len(".yml")] + ".test.yml" for n in differ}
    os.makedirs(os.path.join(tmp, "tests"))
    copies = []
    for path in tests:
        if os.path.basename(path) in wanted:
            copies.append(os.path.join(tmp, "tests", os.path.basename(path)))
            shutil.copyfile(path, copies[-1])
    results = promtool_tests.run(promtool, copies)
    failed = [_rule_test_step(c, c, ok, out, promtool) for c, (ok, out) in results.items()
              if not ok]
    cases = [c for r in failed for c in failed_promtool_cases(r.output)]
    output = ("failing cases:\n" + "\n".join(f"  {c}" for c in cases) + "\n"
              if cases else "") + "\n".join(r.output for r in failed)
    note = (f"{len(differ)} rule file(s) differ from prometheus/rules/ "
            f"({', '.join(differ[:5])}{', ...' if len(differ) > 5 else ''}): their tests ran "
            f"on the rendered groups")
    return Step(name, not failed, [promtool, "test", "rules", *copies], output, note)


def chart_rule_steps(out_dir: str, objects: list[dict], label: str) -> list[Step]:
    """promtool on the rule groups of the rendered PrometheusRules: `check rules`, and the
    Compose stack's rule tests (prometheus/tests/*.test.yml) run against them. A rendered
    file whose groups are, as data, those of its prometheus/rules/ file is proven by that
    comparison (promtool checks and tests those files anyway); the others go to promtool."""
    import yaml

    from stackgen.check import find_promtool, missing, rendered_rule_files, run

    promtool = find_promtool()
    tests = sorted(glob.glob(os.path.join(out_dir, "prometheus", "tests", "*.test.yml")))
    check_name = f"promtool check rules ({label} PrometheusRules)"
    if not promtool:
        return [missing(check_name, "promtool")] + \
            ([missing(f"promtool test rules ({label} PrometheusRules)", "promtool")]
             if tests else [])
    rendered = rendered_rule_files(objects)
    if not rendered:
        return [Step(check_name, False, [], "the chart renders no PrometheusRule")]
    differ = differing_rule_files(compose_rule_files(out_dir), rendered)
    steps = []
    with tempfile.TemporaryDirectory(prefix="stackgen-helm-") as tmp:
        os.makedirs(os.path.join(tmp, "rules"))
        paths = []
        for name in differ:
            if name not in rendered:
                continue
            paths.append(os.path.join(tmp, "rules", name))
            with open(paths[-1], "w", encoding="utf-8") as fh:
                yaml.dump(rendered[name], fh, sort_keys=False, allow_unicode=True,
                          Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))
        if paths:
            steps.append(run(check_name, [promtool, "check", "rules", "--lint=all",
                                          "--lint-fatal", *paths]))
        else:
            steps.append(Step(check_name, True, [], note=(
                f"the chart renders the very rule groups of prometheus/rules/ ({len(rendered)} "
                f"files, compared file by file as data), which `promtool check rules` "
                f"checked above")))
        if tests:
            steps.append(chart_rule_tests(tmp, tests, promtool, label, differ))
    return steps
