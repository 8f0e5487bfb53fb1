"""Where the project lives: relative paths in stack config are resolved from here."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
