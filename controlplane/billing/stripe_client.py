"""The one place Herd talks to Stripe.

A narrow interface over the `stripe` SDK's `StripeClient` (one per settings
object, never the module-global `stripe.api_key`), on Stripe's current API:
products, prices, customers, subscriptions, Checkout. Every write carries an
idempotency key derived from Herd's own ids, so a retried task or a resent
request replays Stripe's first answer instead of charging or creating twice.
The SDK's errors become Herd's here; nothing above this module imports
`stripe`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import stripe

from controlplane.billing.settings import BillingSettings, get_billing_settings
from controlplane.problems import HerdError

log = logging.getLogger(__name__)


class BillingNotConfigured(HerdError):
    status, kind, title = 503, "billing-not-configured", "Billing is not configured"


class StripeUnavailable(HerdError):
    """Stripe did not answer, or answered that it could not now: worth a retry."""

    status, kind, title = 503, "stripe-unavailable", "Stripe is unavailable"


class StripeRejected(HerdError):
    """Stripe refused the request as made; retrying the same will not help."""

    status, kind, title = 502, "stripe-rejected", "Stripe refused the request"


@dataclass(frozen=True)
class CreatedSubscription:
    id: str
    status: str


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str | None


@dataclass(frozen=True)
class CreatedItem:
    id: str
    created: int


class BillingGateway(Protocol):
    def ensure_product(self, product_id: str, name: str, metadata: dict[str, str]) -> str: ...

    def create_price(
        self,
        product_id: str,
        amount_cents: int,
        currency: str,
        interval: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> str: ...

    def create_customer(
        self, name: str, email: str | None, metadata: dict[str, str], idempotency_key: str
    ) -> str: ...

    def create_subscription(
        self,
        customer_id: str,
        price_ids: list[str],
        metadata: dict[str, str],
        collection_method: str,
        days_until_due: int | None,
        idempotency_key: str,
    ) -> CreatedSubscription: ...

    def create_checkout_session(
        self,
        customer_id: str,
        price_ids: list[str],
        metadata: dict[str, str],
        success_url: str,
        cancel_url: str,
        client_reference_id: str,
        idempotency_key: str,
    ) -> CheckoutSession: ...

    def change_subscription_price(
        self, subscription_id: str, price_id: str, idempotency_key: str
    ) -> None: ...

    def add_subscription_item(
        self, subscription_id: str, price_id: str, metadata: dict[str, str], idempotency_key: str
    ) -> CreatedItem: ...

    def remove_subscription_item(self, item_id: str, idempotency_key: str) -> None: ...

    def cancel_subscription(
        self, subscription_id: str, at_period_end: bool, idempotency_key: str
    ) -> None: ...


def _translate(error: stripe.StripeError) -> HerdError:
    # Stripe's message can quote what was sent; the request id is what
    # support needs, and holds nothing secret.
    request_id = getattr(error, "request_id", None) or "none"
    transient = (
        stripe.APIConnectionError,
        stripe.RateLimitError,
        stripe.APIError,
        stripe.IdempotencyError,
    )
    if isinstance(error, transient) or (error.http_status or 0) >= 500:
        return StripeUnavailable(f"{type(error).__name__} (request {request_id})")
    return StripeRejected(
        f"{type(error).__name__}: {error.user_message or 'refused'} (request {request_id})"
    )


class StripeSdkGateway:
    def __init__(self, settings: BillingSettings) -> None:
        if settings.stripe_api_key is None:
            raise BillingNotConfigured("set HERD_STRIPE_API_KEY to bill through Stripe")
        self._client = stripe.StripeClient(
            settings.stripe_api_key.get_secret_value(),
            base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else None,
            max_network_retries=settings.stripe_max_network_retries,
        )

    def _call(self, what: str, fn: Any, params: dict[str, Any], key: str | None = None) -> Any:
        options: dict[str, Any] = {"idempotency_key": key} if key else {}
        try:
            return fn(params=params, options=options)
        except stripe.StripeError as error:
            herd_error = _translate(error)
            log.warning("stripe %s failed: %s", what, herd_error.detail)
            raise herd_error from None

    def ensure_product(self, product_id: str, name: str, metadata: dict[str, str]) -> str:
        # Herd names the product, so "create it unless it exists" needs no
        # idempotency key of its own: a second create answers
        # resource_already_exists and the name is brought up to date instead.
        products = self._client.v1.products
        try:
            products.retrieve(product_id)
        except stripe.InvalidRequestError as missing:
            if missing.http_status != 404:
                raise _translate(missing) from None
            self._call(
                "product create",
                products.create,
                {"id": product_id, "name": name, "metadata": metadata},
                f"herd-product-{product_id}",
            )
            return product_id
        except stripe.StripeError as error:
            raise _translate(error) from None
        self._call(
            "product update",
            lambda params, options: products.update(product_id, params=params, options=options),
            {"name": name, "metadata": metadata},
        )
        return product_id

    def create_price(
        self,
        product_id: str,
        amount_cents: int,
        currency: str,
        interval: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> str:
        price = self._call(
            "price create",
            self._client.v1.prices.create,
            {
                "product": product_id,
                "unit_amount": amount_cents,
                "currency": currency,
                "recurring": {"interval": interval},
                "metadata": metadata,
            },
            idempotency_key,
        )
        return str(price.id)

    def create_customer(
        self, name: str, email: str | None, metadata: dict[str, str], idempotency_key: str
    ) -> str:
        params: dict[str, Any] = {"name": name, "metadata": metadata}
        if email:
            params["email"] = email
        customer = self._call(
            "customer create", self._client.v1.customers.create, params, idempotency_key
        )
        return str(customer.id)

    def create_subscription(
        self,
        customer_id: str,
        price_ids: list[str],
        metadata: dict[str, str],
        collection_method: str,
        days_until_due: int | None,
        idempotency_key: str,
    ) -> CreatedSubscription:
        params: dict[str, Any] = {
            "customer": customer_id,
            "items": [{"price": price} for price in price_ids],
            "metadata": metadata,
            "collection_method": collection_method,
        }
        if collection_method == "send_invoice":
            params["days_until_due"] = days_until_due
        else:
            # The first invoice is charged to the customer's saved card; a
            # failure leaves the subscription incomplete (and the server
            # awaiting payment) rather than refusing the call.
            params["payment_behavior"] = "allow_incomplete"
        subscription = self._call(
            "subscription create", self._client.v1.subscriptions.create, params, idempotency_key
        )
        return CreatedSubscription(str(subscription.id), str(subscription.status))

    def create_checkout_session(
        self,
        customer_id: str,
        price_ids: list[str],
        metadata: dict[str, str],
        success_url: str,
        cancel_url: str,
        client_reference_id: str,
        idempotency_key: str,
    ) -> CheckoutSession:
        session = self._call(
            "checkout session create",
            self._client.v1.checkout.sessions.create,
            {
                "mode": "subscription",
                "customer": customer_id,
                "line_items": [{"price": price, "quantity": 1} for price in price_ids],
                "subscription_data": {"metadata": metadata},
                "metadata": metadata,
                "client_reference_id": client_reference_id,
                "success_url": success_url,
                "cancel_url": cancel_url,
            },
            idempotency_key,
        )
        return CheckoutSession(str(session.id), session.url)

    def change_subscription_price(
        self, subscription_id: str, price_id: str, idempotency_key: str
    ) -> None:
        subscriptions = self._client.v1.subscriptions
        try:
            current = subscriptions.retrieve(subscription_id)
        except stripe.StripeError as error:
            raise _translate(error) from None
        # The plan's item: add-on items on the same subscription carry
        # Herd's add-on order id in their metadata.
        item = next(
            (
                i
                for i in current.to_dict()["items"]["data"]
                if "herd_addon_order_id" not in (i.get("metadata") or {})
            ),
            None,
        )
        if item is None:
            raise StripeRejected(f"subscription {subscription_id} has no plan item")
        self._call(
            "subscription update",
            lambda params, options: subscriptions.update(
                subscription_id, params=params, options=options
            ),
            {
                "items": [{"id": item["id"], "price": price_id}],
                # Stripe works out the credit and the charge for the rest of
                # the period; they land on the next invoice.
                "proration_behavior": "create_prorations",
            },
            idempotency_key,
        )

    def add_subscription_item(
        self, subscription_id: str, price_id: str, metadata: dict[str, str], idempotency_key: str
    ) -> CreatedItem:
        item = self._call(
            "subscription item create",
            self._client.v1.subscription_items.create,
            {
                "subscription": subscription_id,
                "price": price_id,
                "quantity": 1,
                "metadata": metadata,
                # Charged for the rest of the period on the next invoice.
                "proration_behavior": "create_prorations",
            },
            idempotency_key,
        )
        return CreatedItem(str(item.id), int(item.created))

    def remove_subscription_item(self, item_id: str, idempotency_key: str) -> None:
        items = self._client.v1.subscription_items
        try:
            items.delete(
                item_id,
                # The unused rest of the period is credited on the next invoice.
                params={"proration_behavior": "create_prorations"},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.InvalidRequestError as error:
            # Removed already (a retried task, or staff in Stripe's dashboard):
            # the end wanted is there.
            if error.http_status != 404:
                raise _translate(error) from None
        except stripe.StripeError as error:
            raise _translate(error) from None

    def cancel_subscription(
        self, subscription_id: str, at_period_end: bool, idempotency_key: str
    ) -> None:
        subscriptions = self._client.v1.subscriptions
        if at_period_end:
            # Paid for until the period ends; Stripe ends it then and says so
            # with customer.subscription.deleted.
            self._call(
                "subscription cancel at period end",
                lambda params, options: subscriptions.update(
                    subscription_id, params=params, options=options
                ),
                {"cancel_at_period_end": True},
                idempotency_key,
            )
            return
        try:
            subscriptions.cancel(subscription_id, options={"idempotency_key": idempotency_key})
        except stripe.InvalidRequestError as error:
            if error.http_status != 404:
                raise _translate(error) from None
        except stripe.StripeError as error:
            raise _translate(error) from None


_override: BillingGateway | None = None


def use_gateway(gateway: BillingGateway | None) -> None:
    """Put a stand-in in place of Stripe (tests, benchmarks); None restores it."""
    global _override
    _override = gateway
    _sdk_gateway.cache_clear()


@lru_cache
def _sdk_gateway(settings: BillingSettings) -> StripeSdkGateway:
    return StripeSdkGateway(settings)


def gateway(settings: BillingSettings | None = None) -> BillingGateway:
    if _override is not None:
        return _override
    return _sdk_gateway(settings or get_billing_settings())
