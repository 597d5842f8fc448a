"""`sipcli accounts`: list, add, show, set, delete and choose the default account in the configuration file.

``list`` and ``show`` print JSON lines like every subcommand (one ``SIPCLIAccount`` line per account, then
``SIPCLIDidEnd``), or tables with ``--format text``. Confirmations go to stderr as one line; failures end the run
through JobFailed (one stderr line, the summary, the exit code). This module never imports the SIP engine.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

import click
from sipcli.commands.exitcodes import ExitCode, JobFailed, fail_usage
from sipcli.commands.options import CLIContext

from sipcli.account import Account, AccountManager, BonjourAccount
from sipcli.configuration import (
    ConfigurationError,
    ConfigurationManager,
    FileStorage,
    SettingsObjectExists,
    UnknownSettingError,
    declared_default,
    read_section,
    set_dotted,
    settings_dict,
)
from sipcli.configuration.datatypes import SIPAddress, SIPProxyAddress
from sipcli.configuration.settings import SIPSimpleSettings
from sipcli.notification import Notification, NotificationData

__all__ = ["command"]

PASSWORD_HELP = ("The password is stored in config.json (mode 0600, in a 0700 directory) in clear text; "
                 "`accounts show` prints it as ***.")


def _fail(message: str, code: ExitCode) -> NoReturn:
    raise JobFailed(code, message)


@contextlib.contextmanager
def _config_errors() -> Iterator[None]:
    """Turn configuration failures (unreadable, corrupt, unwritable) into one line and exit code 5."""
    try:
        yield
    except ConfigurationError as e:
        _fail(str(e), ExitCode.CONFIG)


def _state() -> CLIContext:
    return click.get_current_context().find_root().ensure_object(CLIContext)


def _start_configuration() -> ConfigurationManager:
    manager = ConfigurationManager()
    with _config_errors():
        manager.start(FileStorage(_state().config_dir))
        SIPSimpleSettings()  # the general settings too: an invalid one fails every accounts command alike
    return manager


def _account_manager() -> AccountManager:
    """Start the configuration from --config-dir and load the accounts."""
    _start_configuration()
    with _config_errors():
        manager = AccountManager()
        manager.start()
    return manager


def _parse_id(text: str) -> SIPAddress:
    try:
        return SIPAddress(text)
    except ValueError as e:
        fail_usage(str(e))


def _lookup(manager: AccountManager, text: str) -> Account | BonjourAccount:
    account_id = _parse_id(text)
    try:
        return manager.get_account(account_id)
    except KeyError:
        _fail(f"unknown account {account_id}", ExitCode.CONFIG)


def _summary(account_id: str, values: dict[str, Any], defaults: dict[str, Any], default_id: str | None) -> dict:
    """The list row of one account from its stored values (read_section) and the declared defaults."""
    def value(name: str) -> Any:
        return values.get(name, defaults[name])

    return {"id": account_id, "default": account_id == default_id, "enabled": value("enabled"),
            "display_name": value("display_name"), "outbound_proxy": value("sip.outbound_proxy"),
            "register": value("registration.enabled")}


def _bonjour_summary(default_id: str | None) -> dict:
    bonjour = BonjourAccount()
    return {"id": str(bonjour.id), "default": str(bonjour.id) == default_id, "enabled": bonjour.enabled,
            "display_name": bonjour.display_name, "outbound_proxy": None, "register": False}


def _table(rows: list, headers: list[str]) -> None:
    from tabulate import tabulate  # about 35 ms of imports, needed only for human output

    click.echo(tabulate(rows, headers=headers, disable_numparse=True))


def _emit(rows: list[dict]) -> None:
    """One SIPCLIAccount JSON line per row (sender account/ID)."""
    writer = _state().writer()
    for row in rows:
        writer.handle_notification(Notification("SIPCLIAccount", sender=f"account/{row['id']}",
                                                data=NotificationData(**row)))


_json_option = click.option("--json", "as_json", is_flag=True, hidden=True,
                            help="JSON lines (the default; kept for scripts that pass it).")


@click.group("accounts")
def command() -> None:
    """Manage SIP accounts in the configuration.

    Passwords are stored in config.json (mode 0600, in a 0700 directory under --config-dir) in clear text.
    """


@command.command("list")
@_json_option
def list_accounts(as_json: bool) -> None:
    """List the accounts: a SIPCLIAccount JSON line each, or a table (default marked *) with --format text."""
    manager = _start_configuration()
    with _config_errors():
        default_id = SIPSimpleSettings().default_account
        default_id = str(default_id) if default_id is not None else None
        rows = [_bonjour_summary(default_id)]
        defaults = {name: declared_default(Account, name)
                    for name in ("enabled", "display_name", "sip.outbound_proxy", "registration.enabled")}
        for account_id, section in sorted(manager.sections(("accounts",)).items()):
            try:
                SIPAddress(account_id)
            except ValueError as e:
                raise ConfigurationError(f"invalid account id {account_id!r} in the configuration: {e}") from None
            values = read_section(Account, Account.upgrade(section) or {}, f"accounts/{account_id}")
            rows.append(_summary(account_id, values, defaults, default_id))
    if _state().output_format == "json" or as_json:
        _emit(rows)
        return
    table = [["*" if row["default"] else "", row["id"], "yes" if row["enabled"] else "no", row["display_name"] or "",
              row["outbound_proxy"] or "", "yes" if row["register"] else "no"] for row in rows]
    _table(table, ["", "ID", "Enabled", "Display name", "Outbound proxy", "Register"])


def _read_password(account_id: str, password_stdin: bool, password_env: str | None) -> str | None:
    if password_stdin and password_env:
        fail_usage("use only one of --password-stdin and --password-env")
    if password_env:
        if password_env not in os.environ:
            fail_usage(f"environment variable {password_env} is not set (--password-env)")
        return os.environ[password_env] or None
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n") or None
    if sys.stdin.isatty():
        return click.prompt(f"Password for {account_id} (empty for none)", default="", hide_input=True,
                            show_default=False, err=True) or None
    return None


@command.command("add")
@click.argument("account_id", metavar="ID")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--password-env", metavar="VAR",
              help="Read the password from environment variable VAR, once, now: the stored copy is what is used "
                   "later (changing VAR afterwards changes nothing).")
@click.option("--display-name", help="The name shown to the people you call.")
@click.option("--proxy", metavar="URI", help="Outbound proxy, e.g. sip:proxy.example.com:5060;transport=tcp.")
@click.option("--default", "make_default", is_flag=True, help="Make it the default account.")
def add_account(account_id: str, password_stdin: bool, password_env: str | None, display_name: str | None,
                proxy: str | None, make_default: bool) -> None:
    """Add the account ID (user@domain). Without a password option, prompts for one on a terminal; an account
    added without any password gets a warning on stderr (registration and calls will then fail to authenticate).

    The password is stored in config.json (mode 0600, in a 0700 directory) in clear text; `accounts show` prints
    it as ***.
    """
    parsed_id = _parse_id(account_id)
    if parsed_id == BonjourAccount.id:
        fail_usage("bonjour@local is the built-in P2P account")
    try:
        outbound_proxy = SIPProxyAddress(proxy) if proxy is not None else None
    except ValueError as e:
        fail_usage(f"--proxy: {e}")
    manager = _account_manager()
    if manager.has_account(parsed_id):
        fail_usage(f"account {parsed_id} already exists")
    password = _read_password(parsed_id, password_stdin, password_env)
    if not password:
        click.echo(f"sipcli accounts: warning: {parsed_id} has no password (set one with "
                   f"`sipcli accounts set {parsed_id} auth.password=...`)", err=True)
    account = Account(parsed_id)
    if display_name:
        account.display_name = display_name
    if password:
        account.auth.password = password
    if outbound_proxy:
        account.sip.outbound_proxy = outbound_proxy
    try:
        account.save(create=True)
    except SettingsObjectExists:  # added by another process since this one read the configuration
        fail_usage(f"account {parsed_id} already exists")
    except ConfigurationError as e:
        _fail(str(e), ExitCode.CONFIG)
    with _config_errors():
        if make_default:
            manager.default_account = account
    click.echo(f"added account {parsed_id}" + (" (default)" if manager.default_account is account else ""), err=True)


@command.command("show")
@click.argument("account_id", metavar="ID")
@_json_option
def show_account(account_id: str, as_json: bool) -> None:
    """Show every setting of account ID (the password as ***): one SIPCLIAccount JSON line, or a table with
    --format text."""
    manager = _account_manager()
    account = _lookup(manager, account_id)
    settings = settings_dict(account, masked=True)
    if _state().output_format == "json" or as_json:
        _emit([{"id": str(account.id), "default": manager.default_account is account, "settings": settings}])
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
            fail_usage(f"expected KEY=VALUE, got {assignment!r}")
        parsed.append((key.strip(), value))
    manager = _account_manager()
    account = _lookup(manager, account_id)
    for key, value in parsed:
        try:
            set_dotted(account, key, value)
        except (UnknownSettingError, ValueError) as e:
            fail_usage(str(e))
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
        fail_usage("bonjour@local is the built-in P2P account and cannot be deleted")
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
