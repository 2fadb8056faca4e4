"""Benchmarks carry their provenance: the project's sidecar is merged into pytest-benchmark's JSON."""


def pytest_benchmark_update_json(config, benchmarks, output_json):
    from tlm_core.ir.target import resolve_target
    from tlm_core.provenance import provenance

    output_json["provenance"] = provenance(resolve_target("host"))
