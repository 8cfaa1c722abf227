"""`herd billing`: the Stripe catalogue sync and the dunning tick."""

from __future__ import annotations

import typer

app = typer.Typer(help="Billing through Stripe.", no_args_is_help=True)


@app.command()
def sync() -> None:
    """Create or update Stripe products and prices for every plan and add-on
    (safe to run again: what is already there is left as it is)."""
    from controlplane.billing import catalogue
    from controlplane.billing.stripe_client import (
        BillingNotConfigured,
        StripeRejected,
        StripeUnavailable,
    )
    from controlplane.db import unit_of_work

    try:
        with unit_of_work() as session:
            report = catalogue.sync(session)
    except (BillingNotConfigured, StripeRejected, StripeUnavailable) as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{len(report.products)} product(s) in sync, {len(report.new_prices)} new price(s)")


@app.command()
def addon(
    code: str = typer.Argument(..., help="moderation (per server, monthly) or support (yearly)"),
    name: str = typer.Option(..., help="what invoices call it"),
    price_cents: int = typer.Option(..., help="price per month (moderation) or year (support)"),
    currency: str = typer.Option("eur"),
) -> None:
    """Set an add-on's name and price in Herd's catalogue; run `herd billing
    sync` afterwards to give Stripe the new price."""
    from controlplane.billing import catalogue
    from controlplane.db import unit_of_work

    try:
        with unit_of_work() as session:
            item = catalogue.set_addon(session, code, name, price_cents, currency)
            summary = (
                f"{item.code}: {item.name}, {item.price_cents} {item.currency}/{item.interval}"
            )
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(summary)


@app.command()
def tick() -> None:
    """Run the dunning tick once (the worker started with --beat runs it)."""
    from controlplane.billing import work
    from controlplane.db import get_engine

    result = work.tick(get_engine())
    typer.echo(f"{result['organisations']} organisation(s) checked, {result['resent']} resent")
