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
def tick() -> None:
    """Run the dunning tick once (the worker started with --beat runs it)."""
    from controlplane.billing import work
    from controlplane.db import get_engine

    result = work.tick(get_engine())
    typer.echo(f"{result['organisations']} organisation(s) checked, {result['resent']} resent")
