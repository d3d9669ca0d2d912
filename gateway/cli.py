"""The ``docgate`` command: ``serve``, ``sign``, ``verify``, ``dev-init``, ``audit``, ``db``,
``agency`` (``add``, ``webhook``), ``token`` and ``report`` (``run``, ``show``)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

from exchange import audit
from exchange.agencies import AgencyError, AgencyRegistry
from exchange.audit import render_verdict, verify_chain
from exchange.db import Database
from exchange.migrate import upgrade
from exchange.reports import ReportError, get_report, run_month, to_csv
from exchange.uow import UnitOfWork
from signing.engine import sign_pdf
from signing.errors import SigningError
from signing.runtime import close_context, open_context
from signing.verify import VerifyContext, restricted_session, verify_pdf

from .auth import Principal, Role
from .checkpoints import CheckpointJob, tsa_certificates
from .routes_sign import parse_options
from .settings import Settings, SettingsError, load_settings
from .wiring import database_url, init_development, seed_development, wire

__all__ = ["main"]


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.service.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("fontTools").setLevel(logging.WARNING)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from .app import create_app

    host = args.host or settings.service.host
    port = args.port or settings.service.port
    logging.getLogger("docgate").info("settings: %r", settings)
    web.run_app(create_app(settings), host=host, port=port, print=None, access_log=None)
    return 0


async def _sign_file(settings: Settings, args: argparse.Namespace) -> int:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    wiring = await asyncio.to_thread(wire, settings, now)
    agency = args.agency or next(iter(wiring.agencies), None)
    raw = {
        k: v
        for k, v in {
            "agency": agency,
            "level": args.level,
            "appearance": args.appearance,
            "page": args.page,
            "box": args.box,
            "reason": args.reason,
            "location": args.location,
            "number": args.number,
            "copy_form": args.copy_form,
        }.items()
        if v is not None
    }
    # The command line acts with the operator's authority over every configured agency.
    options = parse_options(raw, Principal(Role.ADMIN, None, "cli"), settings.signing.default_level)
    data = Path(args.input).read_bytes()
    async with aiohttp.ClientSession() as session:
        ctx = await open_context(wiring.signing, session)
        try:
            result = await sign_pdf(data, options, ctx, now=now)
        finally:
            close_context(ctx)
    Path(args.output).write_bytes(result.pdf)
    print(f"signed {args.input} -> {args.output} at {result.level.value} ({result.field_name})")
    return 0


async def _verify_file(settings: Settings, args: argparse.Namespace) -> int:
    wiring = await asyncio.to_thread(wire, settings, dt.datetime.now(dt.UTC))
    spec = wiring.signing.verification
    data = Path(args.input).read_bytes()
    session = restricted_session(spec.revocation) if spec.revocation.allow_fetching else None
    try:
        ctx = VerifyContext.from_spec(spec, session)
        report = (await verify_pdf(data, ctx, now=dt.datetime.now(dt.UTC))).to_dict()
    finally:
        if session is not None:
            await session.close()
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(report["summary"]["en" if args.english else "vi"])
    return 0 if report["valid"] else 1


async def _registry(settings: Settings):
    url = database_url(settings)
    if settings.database.upgrade_on_start:
        await upgrade(url)
    db = Database.open(url)
    return db, AgencyRegistry(lambda: UnitOfWork(db), audit.append)


async def _dev_init_db(settings: Settings, tokens: dict) -> None:
    db, registry = await _registry(settings)
    try:
        await seed_development(registry, settings, tokens, dt.datetime.now(dt.UTC))
    finally:
        await db.close()


async def _audit(settings: Settings, args: argparse.Namespace) -> int:
    wiring = await asyncio.to_thread(wire, settings, dt.datetime.now(dt.UTC))
    db = Database.open(wiring.database_url)
    try:
        if args.action == "checkpoint":
            async with aiohttp.ClientSession() as session:
                seq = await CheckpointJob(db, wiring.signing.tsa, session).run()
            print(f"checkpoint at entry {seq}" if seq else "nothing to checkpoint")
            return 0
        async with UnitOfWork(db) as uow:
            verdict = await verify_chain(
                uow.session, tsa_certificates=tsa_certificates(wiring.signing.tsa)
            )
        print(render_verdict(verdict))
        return 0 if verdict.ok else 1
    finally:
        await db.close()


async def _report(settings: Settings, args: argparse.Namespace) -> int:
    url = database_url(settings)
    if settings.database.upgrade_on_start:
        await upgrade(url)
    db = Database.open(url)
    try:
        if args.action == "run":
            report = await run_month(
                lambda: UnitOfWork(db),
                args.month,
                now=dt.datetime.now(dt.UTC),
                actor="cli",
                target=settings.reports.target,
            )
        else:
            async with UnitOfWork(db) as uow:
                report = await get_report(uow.session, args.month, args.revision)
    except ReportError as exc:
        print(f"docgate: {exc.code}: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        await db.close()
    if args.action == "show" and args.format == "csv":
        sys.stdout.buffer.write(to_csv(report))
        sys.stdout.flush()
    else:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


async def _admin(settings: Settings, args: argparse.Namespace) -> int:
    now = dt.datetime.now(dt.UTC)
    if args.command == "audit":
        return await _audit(settings, args)
    if args.command == "report":
        return await _report(settings, args)
    if args.command == "db":
        await upgrade(database_url(settings))
        print("database schema is up to date")
        return 0
    db, registry = await _registry(settings)
    try:
        if args.command == "agency" and args.action == "webhook":
            secret = await registry.set_webhook(
                args.code, None if args.off else args.url, actor="cli", now=now
            )
            if secret is None:
                print(f"webhook of {args.code} removed")
            else:  # shown once: the receiver checks DocGate-Signature with it
                print(json.dumps({"agency": args.code, "url": args.url, "secret": secret}))
        elif args.command == "agency":
            agency = await registry.add_agency(
                args.code, args.name, args.parent, actor="cli", now=now
            )
            print(json.dumps(agency, ensure_ascii=False))
        elif args.action == "issue":
            expires = now + dt.timedelta(days=args.expires_days) if args.expires_days else None
            issued = await registry.issue_token(
                Role(args.role), args.agency, args.label, actor="cli", now=now, expires_at=expires
            )
            print(json.dumps({"id": issued.info.id, "token": issued.token}))
        else:
            if not await registry.revoke_token(args.id, actor="cli", now=now):
                print(f"docgate: no active token {args.id}", file=sys.stderr)
                return 1
            print(f"revoked {args.id}")
    except AgencyError as exc:
        print(f"docgate: {exc.code}: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        await db.close()
    return 0


def _dev_init(settings: Settings) -> int:
    state = init_development(settings, dt.datetime.now(dt.UTC))
    asyncio.run(_dev_init_db(settings, state.dev_tokens))
    print(
        json.dumps(
            {
                "pki": str(state.pki.root),
                "root_certificate": str(state.pki.root_cert),
                "tokens": str(state.dev_tokens_file),
            },
            indent=2,
        )
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="docgate", description="DocGate signing gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    sign = sub.add_parser("sign", help="sign one PDF in-process")
    sign.add_argument("input")
    sign.add_argument("-o", "--output", required=True)
    sign.add_argument("--agency")
    sign.add_argument("--level", choices=["B-B", "B-T", "B-LT", "B-LTA"])
    sign.add_argument("--appearance", choices=["agency", "copy", "appendix", "none"])
    sign.add_argument("--page", type=int)
    sign.add_argument("--box")
    sign.add_argument("--reason")
    sign.add_argument("--location")
    sign.add_argument("--number")
    sign.add_argument("--copy-form", dest="copy_form")
    verify = sub.add_parser("verify", help="verify a signed PDF (exit 0 valid, 1 not valid)")
    verify.add_argument("input")
    verify.add_argument("--json", action="store_true", help="print the full report as JSON")
    verify.add_argument("--english", action="store_true", help="summary in English")
    sub.add_parser("dev-init", help="create the development PKI, seals and tokens under var/")
    audit_cmd = sub.add_parser("audit", help="the tamper-evident audit chain")
    audit_cmd.add_argument("action", choices=["verify", "checkpoint"])
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])
    agency = sub.add_parser("agency", help="the agency registry")
    asub = agency.add_subparsers(dest="action", required=True)
    add = asub.add_parser("add", help="register an agency")
    add.add_argument("code")
    add.add_argument("name")
    add.add_argument("--parent")
    hook = asub.add_parser(
        "webhook", help="set an agency's webhook URL (prints its new secret once) or --off"
    )
    hook.add_argument("code")
    hook.add_argument("url", nargs="?")
    hook.add_argument("--off", action="store_true", help="remove the webhook and its secret")
    token = sub.add_parser("token", help="bearer tokens (stored hashed)")
    tsub = token.add_subparsers(dest="action", required=True)
    issue = tsub.add_parser("issue", help="print a new token once")
    issue.add_argument("--role", choices=[r.value for r in Role], required=True)
    issue.add_argument("--agency")
    issue.add_argument("--label", default="")
    issue.add_argument("--expires-days", type=int, dest="expires_days")
    revoke = tsub.add_parser("revoke")
    revoke.add_argument("id")
    report = sub.add_parser("report", help="the monthly electronic-exchange report")
    rsub = report.add_subparsers(dest="action", required=True)
    run = rsub.add_parser("run", help="compute a month now and store it as its next revision")
    run.add_argument("--month", required=True, help="YYYY-MM (Asia/Ho_Chi_Minh)")
    show = rsub.add_parser("show", help="print a stored revision (the latest by default)")
    show.add_argument("--month", required=True, help="YYYY-MM (Asia/Ho_Chi_Minh)")
    show.add_argument("--format", choices=["json", "csv"], default="json")
    show.add_argument("--revision", type=int)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "agency" and args.action == "webhook" and args.off == bool(args.url):
        parser.error("agency webhook takes either a URL or --off")
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"docgate: configuration error: {exc}", file=sys.stderr)
        return 2
    _configure_logging(settings)
    try:
        if args.command == "serve":
            return _serve(settings, args)
        if args.command == "sign":
            return asyncio.run(_sign_file(settings, args))
        if args.command == "verify":
            return asyncio.run(_verify_file(settings, args))
        if args.command in ("db", "agency", "token", "audit", "report"):
            return asyncio.run(_admin(settings, args))
        return _dev_init(settings)
    except SigningError as exc:
        print(f"docgate: {exc.code}: {exc.detail}", file=sys.stderr)
        return 2 if args.command == "verify" else 1
    except OSError as exc:
        print(f"docgate: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
