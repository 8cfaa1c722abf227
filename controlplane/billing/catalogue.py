"""`herd billing sync`: the catalogue kept in Herd, mirrored to Stripe.

Each plan and add-on is a Stripe product whose id Herd chooses
(`herd-plan-<code>`, `herd-addon-<code>`), with a recurring price. Prices are
immutable in Stripe, so a changed amount, currency or interval makes a new
price (its idempotency key names all three) and new subscriptions use it;
existing ones keep theirs until a plan change. Running sync twice changes
nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, select

from controlplane.billing.models import AddOn, Plan
from controlplane.billing.stripe_client import gateway


@dataclass
class SyncReport:
    products: list[str] = field(default_factory=list)
    new_prices: list[str] = field(default_factory=list)


# The add-ons Herd knows how to sell, and how each is billed: moderation
# staffing per server each month (an item beside the plan), a support contract
# per organisation each year (a subscription of its own).
ADDON_TERMS: dict[str, tuple[str, str]] = {
    "moderation": ("month", "server"),
    "support": ("year", "organisation"),
}


class UnknownAddOn(ValueError):
    pass


def set_addon(
    session: Session, code: str, name: str, price_cents: int, currency: str = "eur"
) -> AddOn:
    """Create or change one of the add-ons Herd sells; `herd billing sync`
    then gives a changed price its new Stripe price. The caller commits."""
    if code not in ADDON_TERMS:
        raise UnknownAddOn(f"{code!r} is not an add-on Herd sells: {', '.join(ADDON_TERMS)}")
    if price_cents < 0 or not name.strip() or len(name) > 100:
        raise ValueError("give a name (1-100 characters) and a price of 0 or more cents")
    if len(currency) != 3 or not currency.isalpha():
        raise ValueError("currency is a three-letter ISO code, e.g. eur")
    interval, per = ADDON_TERMS[code]
    addon = session.exec(select(AddOn).where(AddOn.code == code)).first() or AddOn(
        code=code, name=name, price_cents=price_cents, interval=interval, per=per
    )
    addon.name, addon.price_cents, addon.currency = name.strip(), price_cents, currency.lower()
    addon.interval, addon.per, addon.active = interval, per, True
    session.add(addon)
    session.flush()
    return addon


def _price_key(kind: str, code: str, amount: int, currency: str, interval: str) -> str:
    return f"herd-price-{kind}-{code}-{amount}-{currency}-{interval}"


def sync(session: Session) -> SyncReport:
    report = SyncReport()
    items: list[tuple[str, Plan | AddOn, int, str]] = [
        ("plan", plan, plan.monthly_price_cents, "month")
        for plan in session.exec(select(Plan)).all()
    ]
    items += [
        ("addon", addon, addon.price_cents, addon.interval)
        for addon in session.exec(select(AddOn)).all()
    ]
    for kind, item, amount, interval in items:
        product_id = gateway().ensure_product(
            f"herd-{kind}-{item.code}", item.name, {"herd_kind": kind, "herd_code": item.code}
        )
        report.products.append(product_id)
        key = _price_key(kind, item.code, amount, item.currency, interval)
        if item.stripe_price_id and item.stripe_price_key == key:
            continue
        price_id = gateway().create_price(
            product_id, amount, item.currency, interval, {"herd_price_key": key}, key
        )
        item.stripe_product_id, item.stripe_price_id, item.stripe_price_key = (
            product_id,
            price_id,
            key,
        )
        session.add(item)
        report.new_prices.append(price_id)
    return report
