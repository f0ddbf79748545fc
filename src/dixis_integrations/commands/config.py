"""``dixis-integrations config check``: validate the configuration without calling anyone."""

from __future__ import annotations

import argparse
import sys

from dixis_integrations.commands._common import add_config_argument, config_path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``config`` command."""
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="validate the file and every integration's settings")
    add_config_argument(check)


def run(args: argparse.Namespace) -> int:
    """0 when valid; 2 with the key named when not."""
    from dixis_integrations.config import check_oauth, load_settings, validate_integration
    from dixis_integrations.errors import ConfigurationError, PluginLoadError
    from dixis_integrations.registry import Registry

    path = config_path(args)
    try:
        settings = load_settings(path)
        registry = Registry()
        for item in settings.integrations:
            try:
                cls = registry.load(item.kind, item.name)
            except (PluginLoadError, ConfigurationError) as exc:
                raise ConfigurationError(str(exc), key=item.key) from None
            validate_integration(item, cls)
            check_oauth(settings, item, cls)
    except ConfigurationError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 2
    print(
        f"{path}: ok ({len(settings.integrations)} integrations, journal {settings.journal.url.split('://')[0]})"
    )
    return 0
