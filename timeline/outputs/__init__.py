"""Outputs: figures and reports. They only render what reading and analysis return."""
