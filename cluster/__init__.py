"""cluster: write a pipeline once, run it locally, on Slurm/Torque, or remotely."""
__version__ = "0.1.0"
