"""`sipcli accounts`: list, add, show, set, delete and choose the default account in the configuration file.

Output is for humans (tables) or, with ``--json``, JSON objects one per line. Confirmations and errors go to
stderr as one line. This module never imports the SIP engine.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import NoReturn

import click
from sipcli.commands.exitcodes import ExitCode

from sipcli.account import Account, AccountManager, BonjourAccount
from sipcli.configuration import (
    ConfigurationError,
    ConfigurationManager,
    FileStorage,
    UnknownSettingError,
    set_dotted,
    settings_dict,
)
from sipcli.configuration.datatypes import SIPAddress, SIPProxyAddress
from sipcli.jsonlines import to_jsonable

__all__ = ["command"]


def _fail(message: str, code: ExitCode) -> NoReturn:
    click.echo(f"sipcli accounts: {message}", err=True)
    click.get_current_context().exit(code)


@contextlib.contextmanager
def _config_errors() -> Iterator[None]:
    """Turn configuration failures (unreadable, corrupt, unwritable) into one line and exit code 5."""
    try:
        yield
    except ConfigurationError as e:
        _fail(str(e), ExitCode.CONFIG)


def _account_manager() -> AccountManager:
    """Start the configuration from --config-dir and load the accounts."""
    config_dir = click.get_current_context().find_root().obj.config_dir
    with _config_errors():
        ConfigurationManager().start(FileStorage(config_dir))
        manager = AccountManager()
        manager.start()
    return manager


def _parse_id(text: str) -> SIPAddress:
    try:
        return SIPAddress(text)
    except ValueError as e:
        _fail(str(e), ExitCode.USAGE)


def _lookup(manager: AccountManager, text: str) -> Account | BonjourAccount:
    account_id = _parse_id(text)
    try:
        return manager.get_account(account_id)
    except KeyError:
        _fail(f"unknown account {account_id}", ExitCode.CONFIG)


def _summary(manager: AccountManager, account: Account | BonjourAccount) -> dict:
    is_account = isinstance(account, Account)
    return {
        "id": str(account.id),
        "default": manager.default_account is account,
        "enabled": account.enabled,
        "display_name": account.display_name,
        "outbound_proxy": account.sip.outbound_proxy if is_account else None,
        "register": account.sip.register if is_account else False,
    }


def _table(rows: list, headers: list[str]) -> None:
    from tabulate import tabulate  # about 35 ms of imports, needed only for human output

    click.echo(tabulate(rows, headers=headers))


def _emit_json(obj: dict) -> None:
    click.echo(json.dumps(to_jsonable(obj), ensure_ascii=False))


@click.group("accounts")
def command() -> None:
    """Manage SIP accounts in the configuration."""


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per account and line.")
def list_accounts(as_json: bool) -> None:
    """List the accounts; the default one is marked with *."""
    manager = _account_manager()
    rows = [_summary(manager, account) for account in manager.iter_accounts()]
    if as_json:
        for row in rows:
            _emit_json(row)
        return
    table = [["*" if row["default"] else "", row["id"], "yes" if row["enabled"] else "no", row["display_name"] or "",
              row["outbound_proxy"] or "", "yes" if row["register"] else "no"] for row in rows]
    _table(table, ["", "ID", "Enabled", "Display name", "Outbound proxy", "Register"])


def _read_password(account_id: str, password_stdin: bool, password_env: str | None) -> str | None:
    if password_stdin and password_env:
        _fail("use only one of --password-stdin and --password-env", ExitCode.USAGE)
    if password_env:
        if password_env not in os.environ:
            _fail(f"environment variable {password_env} is not set (--password-env)", ExitCode.USAGE)
        return os.environ[password_env] or None
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n") or None
    if sys.stdin.isatty():
        try:
            return click.prompt(f"Password for {account_id} (empty for none)", default="", hide_input=True,
                                show_default=False, err=True) or None
        except click.Abort:
            click.echo("", err=True)
            click.get_current_context().exit(ExitCode.INTERRUPTED)
    return None


@command.command("add")
@click.argument("account_id", metavar="ID")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--password-env", metavar="VAR", help="Read the password from environment variable VAR.")
@click.option("--display-name", help="The name shown to the people you call.")
@click.option("--proxy", metavar="URI", help="Outbound proxy, e.g. sip:proxy.example.com:5060;transport=tcp.")
@click.option("--default", "make_default", is_flag=True, help="Make it the default account.")
def add_account(account_id: str, password_stdin: bool, password_env: str | None, display_name: str | None,
                proxy: str | None, make_default: bool) -> None:
    """Add the account ID (user@domain). Without a password option, prompts for one on a terminal."""
    parsed_id = _parse_id(account_id)
    if parsed_id == BonjourAccount.id:
        _fail("bonjour@local is the built-in P2P account", ExitCode.USAGE)
    try:
        outbound_proxy = SIPProxyAddress(proxy) if proxy is not None else None
    except ValueError as e:
        _fail(f"--proxy: {e}", ExitCode.USAGE)
    manager = _account_manager()
    if manager.has_account(parsed_id):
        _fail(f"account {parsed_id} already exists", ExitCode.USAGE)
    password = _read_password(parsed_id, password_stdin, password_env)
    account = Account(parsed_id)
    if display_name:
        account.display_name = display_name
    if password:
        account.auth.password = password
    if outbound_proxy:
        account.sip.outbound_proxy = outbound_proxy
    with _config_errors():
        account.save()
        if make_default:
            manager.default_account = account
    click.echo(f"added account {parsed_id}" + (" (default)" if manager.default_account is account else ""), err=True)


@command.command("show")
@click.argument("account_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every setting.")
def show_account(account_id: str, as_json: bool) -> None:
    """Show every setting of account ID (the password as ***)."""
    manager = _account_manager()
    account = _lookup(manager, account_id)
    settings = settings_dict(account, masked=True)
    if as_json:
        _emit_json({"id": str(account.id), "default": manager.default_account is account, "settings": settings})
        return
    rows = [["id", account.id], ["default", "yes" if manager.default_account is account else "no"]]
    rows += [[name, _human(value)] for name, value in settings.items()]
    _table(rows, ["Setting", "Value"])


def _human(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


@command.command("set")
@click.argument("account_id", metavar="ID")
@click.argument("assignments", metavar="KEY=VALUE...", nargs=-1, required=True)
def set_account(account_id: str, assignments: tuple[str, ...]) -> None:
    """Change settings of account ID: dotted names (sip.outbound_proxy=...), DEFAULT resets, empty clears.

    Run `sipcli accounts show ID` for the names.
    """
    parsed = []
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            _fail(f"expected KEY=VALUE, got {assignment!r}", ExitCode.USAGE)
        parsed.append((key.strip(), value))
    manager = _account_manager()
    account = _lookup(manager, account_id)
    for key, value in parsed:
        try:
            set_dotted(account, key, value)
        except (UnknownSettingError, ValueError) as e:
            _fail(str(e), ExitCode.USAGE)
    with _config_errors():
        account.save()
    click.echo(f"updated account {account.id}", err=True)


@command.command("delete")
@click.argument("account_id", metavar="ID")
def delete_account(account_id: str) -> None:
    """Delete account ID from the configuration."""
    manager = _account_manager()
    account = _lookup(manager, account_id)
    if isinstance(account, BonjourAccount):
        _fail("bonjour@local is the built-in P2P account and cannot be deleted", ExitCode.USAGE)
    with _config_errors():
        account.delete()
    click.echo(f"deleted account {account.id}", err=True)


@command.command("default")
@click.argument("account_id", metavar="ID")
def default_account(account_id: str) -> None:
    """Make account ID the default account."""
    manager = _account_manager()
    account = _lookup(manager, account_id)
    with _config_errors():
        manager.default_account = account
    click.echo(f"default account is now {account.id}", err=True)
