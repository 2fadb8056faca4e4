"""What is tuned: workloads (models), their tasks (fused subgraphs), the target, and each task's design space."""
