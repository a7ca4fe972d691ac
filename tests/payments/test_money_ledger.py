"""The money ledger: one append-only row per movement of money at the provider, written with
the state it justifies, and per order captures minus refunds equal what the order says was
paid (`payments.money_ledger`, `manage.py check_money_ledger`).

The provider is the sandbox in-process (embedded mode), as in test_reconcile.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal
from importlib import import_module
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils import timezone

from apps.catalog.models import Product
from apps.orders import services as orders_services
from apps.orders.models import Order, OrderStatus
from apps.payments import services as payments_services
from apps.payments.exceptions import MoneyMovementConflict, ProviderUnavailable
from apps.payments.gateway import InProcessSandboxGateway, get_gateway
from apps.payments.models import MoneyMovement, MoneyMovementKind, Payment, PaymentStatus
from apps.payments.services import reconcile_payments
from ecommerce.api.permissions import Role
from ecommerce.invariants import CheckContext, run_checks
from tests.catalog.factories import make_product
from tests.roles import restore_role_groups
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db

TOTAL = Decimal("25.00")  # two lamps at 12.50
LEDGER = "payments.money_ledger"


@pytest.fixture
def lamp() -> Product:
    return make_product(sku="lamp", stock=10, price="12.50")


@pytest.fixture
def place(lamp: Product, django_capture_on_commit_callbacks: Any) -> Any:
    """Place an order of two lamps and open its payment; nothing runs on commit, so the
    test charges it itself."""

    def make(token: str = "tok_success") -> Payment:
        with django_capture_on_commit_callbacks(execute=False):
            order, _ = orders_services.place_order(
                user=UserFactory(),
                lines=[orders_services.OrderLine("lamp", 2)],
                payment_token=token,
            )
        payment = payments_services.open_payment(order_id=order.pk)
        assert payment is not None
        return payment

    return make


@pytest.fixture
def paid(place: Any) -> Payment:
    payment = place()
    assert payments_services.charge_payment(order_id=payment.order_id) == "succeeded"
    payment.refresh_from_db()
    return payment


def movements(payment: Payment) -> list[tuple[str, Decimal, str, str]]:
    return list(
        MoneyMovement.objects.filter(payment=payment)
        .order_by("pk")
        .values_list("kind", "amount", "currency", "provider_reference")
    )


def ledger_check(grace_seconds: float = 0) -> Any:
    """The registered check alone, as `check_invariants --check payments.money_ledger` runs it."""
    context = CheckContext(now=timezone.now(), since=None, grace=timedelta(seconds=grace_seconds))
    (result,) = run_checks(context, only=[LEDGER])
    return result


def run_command(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("check_money_ledger", "--grace-seconds", "0", *args, stdout=out)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue()
    return 0, out.getvalue()


def order_status(payment: Payment) -> str:
    return Order.objects.get(pk=payment.order_id).status


class ExpiringGateway(InProcessSandboxGateway):
    """The sandbox, with the order expiring while its charge is in flight (the expiry sweep
    ran between the charge request and its answer)."""

    def __init__(self, order_id: int) -> None:
        super().__init__()
        self.order_id = order_id

    def charge(self, **kwargs: Any) -> Any:
        assert orders_services.expire_order(order_id=self.order_id)
        return super().charge(**kwargs)


class RefusingRefundsGateway(ExpiringGateway):
    """As above, and the provider is unreachable for the late charge's refund."""

    def refund(self, **kwargs: Any) -> Any:
        raise ProviderUnavailable(reason="connect_error")


# --- Rows written where money moves ----------------------------------------------------------


def test_a_succeeded_charge_writes_one_capture_with_the_paid_order(paid: Payment) -> None:
    assert movements(paid) == [
        (MoneyMovementKind.CAPTURE, TOTAL, paid.currency, paid.provider_charge_id)
    ]
    row = MoneyMovement.objects.get(payment=paid)
    assert (row.order_id, row.reason) == (paid.order_id, "charge succeeded")
    assert order_status(paid) == OrderStatus.PAID
    assert ledger_check().ok


def test_a_declined_charge_writes_nothing(place: Any) -> None:
    payment = place(token="tok_card_declined")

    assert payments_services.charge_payment(order_id=payment.order_id) == "declined"

    assert movements(payment) == []
    assert order_status(payment) == OrderStatus.PAYMENT_FAILED
    assert ledger_check().ok


def test_a_charge_found_by_reconciliation_writes_its_capture(place: Any) -> None:
    # given: the provider charged, but its answer never arrived
    payment = place()
    charge = get_gateway().charge(
        amount=payment.amount,
        currency=payment.currency,
        token=payment.token,
        idempotency_key=payment.idempotency_key,
    )
    long_ago = timezone.now() - timedelta(seconds=settings.PAYMENT_RECONCILE_AFTER_SECONDS + 60)
    Payment.objects.filter(pk=payment.pk).update(
        attempts=1, last_attempt_at=long_ago, updated_at=long_ago
    )

    # when
    assert reconcile_payments()["paid"] == 1

    # then
    assert movements(payment) == [
        (MoneyMovementKind.CAPTURE, TOTAL, payment.currency, charge.charge_id)
    ]
    assert MoneyMovement.objects.get(payment=payment).reason == (
        "charge found by key before charging again"
    )
    assert ledger_check().ok


def test_a_charge_found_at_expiry_writes_its_capture(place: Any) -> None:
    # given: an overdue order the provider charged without us hearing back
    payment = place()
    charge = get_gateway().charge(
        amount=payment.amount,
        currency=payment.currency,
        token=payment.token,
        idempotency_key=payment.idempotency_key,
    )
    Order.objects.filter(pk=payment.order_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    # when
    assert payments_services.expire_overdue_orders()["paid"] == 1

    # then
    assert order_status(payment) == OrderStatus.PAID
    assert movements(payment) == [
        (MoneyMovementKind.CAPTURE, TOTAL, payment.currency, charge.charge_id)
    ]
    assert MoneyMovement.objects.get(payment=payment).reason == "charge found by key at expiry"
    assert ledger_check().ok


def test_the_paid_order_says_what_was_captured_and_a_refund_lowers_it_to_zero(
    paid: Payment, django_capture_on_commit_callbacks: Any
) -> None:
    assert Order.objects.get(pk=paid.order_id).amount_paid == TOTAL

    with django_capture_on_commit_callbacks(execute=True):
        orders_services.refund_order(order_id=paid.order_id, by=None)

    order = Order.objects.get(pk=paid.order_id)
    assert (order.status, order.amount_paid) == (OrderStatus.REFUNDED, Decimal("0.00"))


def test_the_amount_paid_backfill_says_paid_orders_were_paid_their_total(place: Any) -> None:
    migration = import_module("apps.orders.migrations.0009_order_amount_paid")
    paid_before, pending = place(), place()
    Order.objects.filter(pk=paid_before.order_id).update(status=OrderStatus.FULFILLED)

    with connection.cursor() as cursor:
        cursor.execute(migration.BACKFILL)

    paid_amounts = dict(Order.objects.values_list("pk", "amount_paid"))
    assert (paid_amounts[paid_before.order_id], paid_amounts[pending.order_id]) == (
        TOTAL,
        Decimal("0.00"),
    )


def test_a_paid_order_holding_no_money_or_an_expired_one_holding_some_is_a_break(
    paid: Payment, place: Any
) -> None:
    expired = place()
    Order.objects.filter(pk=expired.order_id).update(
        status=OrderStatus.EXPIRED, amount_paid=Decimal("1.00")
    )

    code, output = run_command()

    assert code == 1
    assert "expired: captured 0.00, refunded 0.00, net 0.00" in output
    assert "the order says 1.00 was paid; a expired order must hold none" in output


def test_a_staff_refund_writes_the_refund_with_the_refunded_order(
    paid: Payment, django_capture_on_commit_callbacks: Any
) -> None:
    staff = UserFactory()

    with django_capture_on_commit_callbacks(execute=True):
        orders_services.refund_order(order_id=paid.order_id, by=staff, reason="damaged")

    paid.refresh_from_db()
    assert (order_status(paid), paid.status) == (OrderStatus.REFUNDED, PaymentStatus.REFUNDED)
    assert movements(paid) == [
        (MoneyMovementKind.CAPTURE, TOTAL, paid.currency, paid.provider_charge_id),
        (MoneyMovementKind.REFUND, TOTAL, paid.currency, paid.provider_refund_id),
    ]
    assert MoneyMovement.objects.get(kind=MoneyMovementKind.REFUND).reason == "damaged"
    assert ledger_check().ok


def test_a_refund_finished_twice_is_recorded_once(
    paid: Payment, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        orders_services.refund_order(order_id=paid.order_id, by=None)

    first = payments_services.refund_order_payment(order_id=paid.order_id, reason="asked")
    again = payments_services.refund_payment(order_id=paid.order_id, reason="asked again")

    assert (first, again.status) == ("refunded", PaymentStatus.REFUNDED)
    assert [kind for kind, *_ in movements(paid)] == ["capture", "refund"]
    assert ledger_check().ok


def test_a_late_charge_of_an_expired_order_is_captured_and_refunded(
    place: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the order expires while its charge is in flight
    payment = place()
    monkeypatch.setattr(payments_services, "get_gateway", lambda: ExpiringGateway(payment.order_id))

    # when
    outcome = payments_services.charge_payment(order_id=payment.order_id)

    # then: the charge is recorded, refunded at once, and both are in the ledger
    payment.refresh_from_db()
    assert outcome == "refunded_late"
    assert (order_status(payment), payment.status) == (
        OrderStatus.EXPIRED,
        PaymentStatus.REFUNDED,
    )
    assert movements(payment) == [
        (MoneyMovementKind.CAPTURE, TOTAL, payment.currency, payment.provider_charge_id),
        (MoneyMovementKind.REFUND, TOTAL, payment.currency, payment.provider_refund_id),
    ]
    assert MoneyMovement.objects.get(kind=MoneyMovementKind.REFUND).reason == (
        "late charge of an order expired"
    )
    assert ledger_check().ok


def test_a_late_charge_waiting_for_its_refund_is_explained_then_broken_then_healed(
    place: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a late charge whose refund could not reach the provider
    payment = place()
    monkeypatch.setattr(
        payments_services, "get_gateway", lambda: RefusingRefundsGateway(payment.order_id)
    )
    with pytest.raises(ProviderUnavailable):
        payments_services.charge_payment(order_id=payment.order_id)
    assert [kind for kind, *_ in movements(payment)] == ["capture"]

    # then: within the grace period it is in flight; past it, a break naming the order
    within = ledger_check(grace_seconds=300)
    assert (within.ok, within.explained) == (True, 1)
    past = ledger_check(grace_seconds=0)
    assert not past.ok
    assert past.examples == [
        f"order {payment.order_id} ({Order.objects.get(pk=payment.order_id).public_id}) "
        f"expired: captured 25.00, refunded 0.00, net 25.00 {payment.currency}; "
        "the order says 0.00 was paid"
    ]

    # when: reconciliation refunds it later
    monkeypatch.undo()
    long_ago = timezone.now() - timedelta(seconds=settings.PAYMENT_RECONCILE_AFTER_SECONDS + 1)
    Payment.objects.filter(pk=payment.pk).update(updated_at=long_ago)
    assert reconcile_payments()["refunded"] == 1

    # then
    assert [kind for kind, *_ in movements(payment)] == ["capture", "refund"]
    # the refund reserved when the charge landed, sent again: it keeps its reason
    assert MoneyMovement.objects.get(kind=MoneyMovementKind.REFUND).reason == (
        "late charge of an order expired"
    )
    assert ledger_check().ok


# --- Append-only and once per movement ---------------------------------------------------------


def test_the_database_refuses_to_update_a_movement(paid: Payment) -> None:
    row = MoneyMovement.objects.get(payment=paid)

    refused = pytest.raises(DatabaseError, match="append-only")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE payments_moneymovement SET amount = 1 WHERE id = %s", [row.pk])

    assert MoneyMovement.objects.get(pk=row.pk).amount == TOTAL


def test_the_database_refuses_to_delete_a_movement(paid: Payment) -> None:
    row = MoneyMovement.objects.get(payment=paid)

    refused = pytest.raises(DatabaseError, match="append-only")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM payments_moneymovement WHERE id = %s", [row.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        MoneyMovement.objects.filter(pk=row.pk).delete()

    assert MoneyMovement.objects.filter(pk=row.pk).exists()


def test_a_movement_recorded_again_returns_the_first_row(paid: Payment) -> None:
    first = MoneyMovement.objects.get(payment=paid)

    again = payments_services.record_money_movement(
        payment=paid,
        kind=MoneyMovementKind.CAPTURE,
        amount=TOTAL,
        currency=paid.currency,
        provider_reference=paid.provider_charge_id,
        reason="recorded twice",
    )

    assert again.pk == first.pk
    assert MoneyMovement.objects.filter(payment=paid).count() == 1


def test_a_movement_recorded_with_other_figures_is_refused(paid: Payment) -> None:
    with pytest.raises(MoneyMovementConflict):
        payments_services.record_money_movement(
            payment=paid,
            kind=MoneyMovementKind.CAPTURE,
            amount=Decimal("1.00"),
            currency=paid.currency,
            provider_reference=paid.provider_charge_id,
            reason="wrong",
        )

    assert movements(paid) == [
        (MoneyMovementKind.CAPTURE, TOTAL, paid.currency, paid.provider_charge_id)
    ]


@pytest.mark.django_db(transaction=True)
def test_two_paths_recording_one_movement_at_once_leave_one_row(place: Any) -> None:
    # given: a payment, and one provider movement two paths record at the same time
    payment = place()
    inserted = threading.Event()
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def record(name: str, hold_seconds: float) -> None:
        try:
            with transaction.atomic():
                row = payments_services.record_money_movement(
                    payment=payment,
                    kind=MoneyMovementKind.CAPTURE,
                    amount=TOTAL,
                    currency=payment.currency,
                    provider_reference="ch_race",
                    reason=name,
                )
                inserted.set()
                time.sleep(hold_seconds)  # the second insert waits on this one's commit
            results[name] = row.pk
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    first = threading.Thread(target=record, args=("task", 0.5))
    first.start()
    assert inserted.wait(timeout=10)
    second = threading.Thread(target=record, args=("sweep", 0))
    second.start()
    first.join(timeout=20)
    second.join(timeout=20)

    assert errors == []
    assert results["task"] == results["sweep"]
    assert list(
        MoneyMovement.objects.filter(provider_reference="ch_race").values_list("reason", flat=True)
    ) == ["task"]


# --- The invariant and the operator command ---------------------------------------------------


def test_a_paid_and_a_refunded_order_hold(
    paid: Payment, place: Any, django_capture_on_commit_callbacks: Any
) -> None:
    refunded = place()
    payments_services.charge_payment(order_id=refunded.order_id)
    with django_capture_on_commit_callbacks(execute=True):
        orders_services.refund_order(order_id=refunded.order_id, by=None)
    place(token="tok_card_declined")  # pending, never charged

    result = ledger_check()
    code, output = run_command()

    assert (result.status, result.checked, result.broken) == ("ok", 3, 0)
    assert code == 0, output
    assert output == (
        "money ledger: 3 order(s) checked, 0 broken, 0 late capture(s) awaiting refund; "
        "it adds up\n"
    )


def test_a_stray_refund_breaks_the_invariant_naming_the_order(paid: Payment) -> None:
    # given: a refund row nobody made (inserts pass the trigger: the ledger only grows)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO payments_moneymovement (payment_id, order_id, kind, amount, currency,"
            " provider_reference, reason, created_at) VALUES (%s, %s, 'refund', 5, %s,"
            " 're_stray', 'by hand', NOW())",
            [paid.pk, paid.order_id, paid.currency],
        )
    order = Order.objects.get(pk=paid.order_id)
    line = (
        f"order {order.pk} ({order.public_id}) paid: captured 25.00, refunded 5.00, "
        f"net 20.00 {order.currency}; the order says 25.00 was paid"
    )

    result = ledger_check()
    code, output = run_command()

    assert (result.status, result.broken, result.examples) == ("FAIL", 1, [line])
    assert code == 1
    assert output.splitlines() == [
        f"BROKEN {line}",
        "money ledger: 1 order(s) checked, 1 broken, 0 late capture(s) awaiting refund",
    ]


def test_a_paid_order_without_a_capture_is_a_break(place: Any) -> None:
    payment = place()
    Order.objects.filter(pk=payment.order_id).update(status=OrderStatus.PAID)

    code, output = run_command()

    assert code == 1
    assert f"order {payment.order_id} (" in output
    assert "paid: captured 0.00, refunded 0.00, net 0.00" in output


def test_a_movement_in_another_currency_is_a_break(paid: Payment) -> None:
    other = "USD" if paid.currency != "USD" else "EUR"
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO payments_moneymovement (payment_id, order_id, kind, amount, currency,"
            " provider_reference, reason, created_at) VALUES (%s, %s, 'capture', 1, %s,"
            " 'ch_other', 'by hand', NOW())",
            [paid.pk, paid.order_id, other],
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO payments_moneymovement (payment_id, order_id, kind, amount, currency,"
            " provider_reference, reason, created_at) VALUES (%s, %s, 'refund', 1, %s,"
            " 're_other', 'by hand', NOW())",
            [paid.pk, paid.order_id, other],
        )

    code, output = run_command()

    assert code == 1
    assert "; 2 ledger row(s) in another currency" in output


def test_check_invariants_runs_the_ledger_check(paid: Payment) -> None:
    out = StringIO()
    call_command("check_invariants", "--check", LEDGER, "--grace-seconds", "0", stdout=out)

    assert out.getvalue().startswith(f"ok    {LEDGER}")


# --- Payments from before the ledger ----------------------------------------------------------


def test_the_backfill_records_payments_from_before_the_ledger(place: Any) -> None:
    # given: a succeeded and a refunded payment recorded as before the ledger (no rows)
    migration = import_module("apps.payments.migrations.0003_money_movement")
    succeeded, refunded = place(), place()
    Payment.objects.filter(pk=succeeded.pk).update(
        status=PaymentStatus.SUCCEEDED, provider_charge_id="ch_old"
    )
    Order.objects.filter(pk=succeeded.order_id).update(status=OrderStatus.PAID, amount_paid=TOTAL)
    Payment.objects.filter(pk=refunded.pk).update(
        status=PaymentStatus.REFUNDED, provider_charge_id="ch_older", provider_refund_id=""
    )
    Order.objects.filter(pk=refunded.order_id).update(status=OrderStatus.REFUNDED)
    assert not ledger_check().ok

    # when
    with connection.cursor() as cursor:
        for statement in migration.BACKFILL:
            cursor.execute(statement)

    # then
    assert movements(succeeded) == [
        (MoneyMovementKind.CAPTURE, TOTAL, succeeded.currency, "ch_old")
    ]
    assert movements(refunded) == [
        (MoneyMovementKind.CAPTURE, TOTAL, refunded.currency, "ch_older"),
        (
            MoneyMovementKind.REFUND,
            TOTAL,
            refunded.currency,
            f"refund-of-{refunded.idempotency_key}",
        ),
    ]
    assert ledger_check().ok


# --- Admin: read-only, for support and admins --------------------------------------------------

LEDGER_ADMIN = "/admin/payments/moneymovement/"


@pytest.fixture
def support(client: Client) -> Client:
    restore_role_groups()
    client.force_login(UserFactory(is_staff=True, roles=[Role.SUPPORT]))
    return client


def test_the_payment_page_shows_its_movements_read_only(
    support: Client, paid: Payment, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        orders_services.refund_order(order_id=paid.order_id, by=None)
    paid.refresh_from_db()

    page = support.get(f"/admin/payments/payment/{paid.pk}/change/")

    assert page.status_code == 200
    body = page.content.decode()
    assert paid.provider_charge_id in body
    assert paid.provider_refund_id in body
    assert "movements-TOTAL_FORMS" in body
    assert 'name="movements-0-amount"' not in body  # shown, never a field to edit


def test_the_ledger_lists_movements_by_kind_linking_to_their_order(
    support: Client, paid: Payment, place: Any
) -> None:
    other = place()
    payments_services.charge_payment(order_id=other.order_id)
    order_url = f"/admin/orders/order/{paid.order_id}/change/"

    listing = support.get(LEDGER_ADMIN)
    captures = support.get(LEDGER_ADMIN, {"kind__exact": "capture"})
    refunds = support.get(LEDGER_ADMIN, {"kind__exact": "refund"})
    now = timezone.localtime()
    today = support.get(
        LEDGER_ADMIN,
        {"created_at__year": now.year, "created_at__month": now.month, "created_at__day": now.day},
    )

    assert listing.status_code == 200
    assert order_url in listing.content.decode()
    assert len(captures.context["cl"].result_list) == 2
    assert len(refunds.context["cl"].result_list) == 0
    assert len(today.context["cl"].result_list) == 2


def test_nobody_adds_changes_or_deletes_a_movement_in_the_admin(
    client: Client, paid: Payment
) -> None:
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    row = MoneyMovement.objects.get(payment=paid)

    add = client.get(f"{LEDGER_ADMIN}add/")
    change = client.post(f"{LEDGER_ADMIN}{row.pk}/change/", {"amount": "1.00"})
    delete = client.post(f"{LEDGER_ADMIN}{row.pk}/delete/", {"post": "yes"})

    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    assert MoneyMovement.objects.get(pk=row.pk).amount == TOTAL
