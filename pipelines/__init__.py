"""KPI Bridge pipelines: telemetry -> staging -> L6 metrics -> bridge -> audit."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = ROOT / "sql"
CONFIG_DIR = ROOT / "config"
EXPECTATIONS_DIR = ROOT / "expectations"
