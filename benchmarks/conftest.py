"""Benchmarks carry their provenance: the project's sidecar is merged into pytest-benchmark's JSON."""


def pytest_benchmark_update_json(config, benchmarks, output_json):
    from tlm_core.provenance import provenance
    from tlm_core.target import resolve_target

    output_json["provenance"] = provenance(resolve_target("host"))
