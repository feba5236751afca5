"""The tiny function benchmarks/executor.py maps, in a module of its own.

Workers on the node import it by name: the benchmark puts benchmarks/ on their PYTHONPATH
(sbatch exports the submitting environment), so every side ships it by reference alike.
"""


def tiny(x: int) -> int:
    """One tiny call: its results sum to ``expected_sum``."""
    return x * x


def expected_sum(n: int) -> int:
    """sum(tiny(x) for x in range(n)), in closed form."""
    return (n - 1) * n * (2 * n - 1) // 6
