"""The audit log: each staff change of each kind is one event with its actor, source and
before/after; customers' and workers' changes, and rolled-back ones, leave none; the table
refuses UPDATE, DELETE and TRUNCATE; the API and the admin read it, with the permission."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client

from apps.audit.models import AuditEvent
from apps.catalog.models import ProductVariant
from apps.catalog.services import update_variant
from apps.inventory.models import Stock
from apps.orders import services as orders_services
from apps.orders.models import Order, OrderStatus
from apps.payments.models import Refund
from apps.pricing.models import TaxSettings
from ecommerce import audit
from ecommerce.api.permissions import Role
from tests.catalog.factories import make_product
from tests.catalog.test_admin import page_data
from tests.pricing.factories import make_voucher
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"


@pytest.fixture
def boss() -> Any:
    return UserFactory(email="boss@example.com", is_staff=True, roles=[Role.ADMIN])


@pytest.fixture
def admin_site(boss: Any) -> Client:
    client = Client()
    client.force_login(boss)
    return client


def events() -> list[tuple[str, str, str, str, dict[str, Any]]]:
    return [
        (e.actor_label, e.source, e.action, f"{e.content_type.model}:{e.object_id}", e.changes)
        for e in AuditEvent.objects.select_related("content_type").order_by("pk")
    ]


def change(before: Any, after: Any) -> dict[str, Any]:
    return {"before": before, "after": after}


# --- One event per staff change, each kind ------------------------------------------------


def test_a_price_changed_in_the_admin_is_one_event(admin_site: Client) -> None:
    product = make_product(sku="lamp", price="10.00", stock=1)
    variant = ProductVariant.objects.get(sku="lamp")
    url = f"/admin/catalog/product/{product.pk}/change/"
    data = page_data(admin_site.get(url)) | {"variants-0-price": "12.50"}

    response = admin_site.post(url, data)

    assert response.status_code == 302, response.context and response.context["errors"]
    assert events() == [
        (
            "boss@example.com",
            "admin",
            "update",
            f"productvariant:{variant.pk}",
            {"price": change("10.00", "12.50")},
        )
    ]
    assert AuditEvent.objects.get().request_id == response["X-Request-ID"]


def test_a_price_changed_through_the_api_is_one_event(client_for: Any) -> None:
    manager = UserFactory(email="cm@example.com", roles=[Role.CATALOG_MANAGER])
    make_product(sku="lamp", price="10.00", stock=1)
    variant = ProductVariant.objects.get(sku="lamp")

    response = client_for(manager).patch("/api/variants/lamp/", {"price": "9.00"})

    assert response.status_code == 200, response.content
    assert events() == [
        (
            "cm@example.com",
            "api",
            "update",
            f"productvariant:{variant.pk}",
            {"price": change("10.00", "9.00")},
        )
    ]
    assert AuditEvent.objects.get().actor == manager


def test_a_price_changed_by_import_products_is_one_event(tmp_path: Path) -> None:
    make_product(sku="lamp", price="10.00", stock=1)
    variant = ProductVariant.objects.get(sku="lamp")
    path = tmp_path / "products.csv"
    path.write_text("sku,price\nlamp,11.00\n", encoding="utf-8")

    call_command("import_products", str(path), stdout=StringIO(), stderr=StringIO())

    ((label, source, action, target, changes),) = events()
    assert label.startswith("command:import_products (")
    assert (source, action, target, changes) == (
        "command",
        "update",
        f"productvariant:{variant.pk}",
        {"price": change("10.00", "11.00")},
    )
    assert AuditEvent.objects.get().actor is None


def test_a_stock_adjustment_is_one_event(client_for: Any) -> None:
    manager = UserFactory(email="cm@example.com", roles=[Role.CATALOG_MANAGER])
    product = make_product(sku="lamp", stock=5)
    stock = Stock.objects.get(variant=product.variant)

    response = client_for(manager).post(
        "/api/products/lamp/stock/", {"delta": -2, "reason": "adjustment", "note": "broken"}
    )

    assert response.status_code in (200, 201), response.content
    assert events() == [
        (
            "cm@example.com",
            "api",
            "stock.adjustment",
            f"stock:{stock.pk}",
            {"quantity": change(5, 3), "note": change("", "broken")},
        )
    ]
    assert AuditEvent.objects.get().object_repr == "lamp in main"


def _order(sku: str, *, paid: bool, capture: Any) -> Order:
    make_product(sku=sku, stock=5)
    with capture(execute=True):
        order, _ = orders_services.place_order(
            user=UserFactory(roles=[Role.CUSTOMER]),
            lines=[orders_services.OrderLine(sku, 1)],
            payment_token="tok_success" if paid else "tok_pending",
        )
    order.refresh_from_db()
    return order


def test_an_order_cancelled_by_staff_is_one_event_and_its_placing_none(
    client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    support = UserFactory(email="admin2@example.com", roles=[Role.ADMIN])
    make_product(sku="lamp", stock=5)
    with django_capture_on_commit_callbacks(execute=False):
        order, _ = orders_services.place_order(
            user=UserFactory(roles=[Role.CUSTOMER]),
            lines=[orders_services.OrderLine("lamp", 1)],
            payment_token="tok_success",
        )
    assert order.status == OrderStatus.PENDING_PAYMENT

    response = client_for(support).post(f"/api/orders/{order.public_id}/cancel")

    assert response.status_code == 200, response.content
    assert events() == [
        (
            "admin2@example.com",
            "api",
            "order.cancelled",
            f"order:{order.pk}",
            {"status": change("pending_payment", "cancelled")},
        )
    ]


def test_a_refund_by_staff_is_one_event_whatever_the_worker_does(
    client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    boss = UserFactory(email="refunds@example.com", roles=[Role.ADMIN])
    order = _order("lamp", paid=True, capture=django_capture_on_commit_callbacks)
    assert order.status == OrderStatus.PAID
    assert events() == []  # a customer's order, its payment: no staff change

    # The refund runs on commit, eagerly in this process: worker code, not recorded.
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(boss).post(f"/api/orders/{order.public_id}/cancel")

    assert response.status_code == 200, response.content
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert events() == [
        (
            "refunds@example.com",
            "api",
            "order.refunding",
            f"order:{order.pk}",
            {"status": change("paid", "refunding")},
        )
    ]


def test_a_partial_refund_by_staff_is_one_event_on_the_refund(
    client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    boss = UserFactory(email="refunds@example.com", roles=[Role.ADMIN])
    order = _order("lamp", paid=True, capture=django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(boss).post(
            f"/api/orders/{order.public_id}/refunds",
            {"amount": "1.00", "reason": "scratched"},
            format="json",
        )

    assert response.status_code == 201, response.content
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID  # a part: the order stays paid
    (refund_pk,) = Refund.objects.filter(order=order).values_list("pk", flat=True)
    assert events() == [
        (
            "refunds@example.com",
            "api",
            "payment.refund",
            f"refund:{refund_pk}",
            {
                "order": change(None, str(order.public_id)),
                "amount": change(None, "1.00"),
                "reason": change(None, "scratched"),
            },
        )
    ]


def test_a_role_granted_in_the_admin_is_one_event(admin_site: Client) -> None:
    clerk = UserFactory(email="clerk@example.com", is_staff=True, roles=[Role.CUSTOMER])
    support = Group.objects.get(name=Role.SUPPORT)
    url = f"/admin/users/user/{clerk.pk}/change/"
    data = page_data(admin_site.get(url))
    data["groups"] = [*data.get("groups", []), str(support.pk)]

    response = admin_site.post(url, data)

    assert response.status_code == 302, response.context and response.context["errors"]
    assert events() == [
        (
            "boss@example.com",
            "admin",
            "role.grant",
            f"user:{clerk.pk}",
            {"groups": change(["customer"], ["customer", "support"])},
        )
    ]


def test_a_voucher_edited_in_the_admin_is_one_event(admin_site: Client) -> None:
    voucher = make_voucher("SAVE10", value="10")
    url = f"/admin/pricing/voucher/{voucher.pk}/change/"
    data = page_data(admin_site.get(url)) | {"value": "15"}

    response = admin_site.post(url, data)

    assert response.status_code == 302, response.context and response.context["errors"]
    assert events() == [
        (
            "boss@example.com",
            "admin",
            "update",
            f"voucher:{voucher.pk}",
            {"value": change("10.00", "15.00")},
        )
    ]


def test_the_tax_settings_edited_in_the_admin_are_one_event(admin_site: Client) -> None:
    settings_row, _ = TaxSettings.objects.get_or_create(pk=1)
    before = settings_row.prices_include_tax
    url = f"/admin/pricing/taxsettings/{settings_row.pk}/change/"
    data = page_data(admin_site.get(url))
    if before:
        data.pop("prices_include_tax", None)
    else:
        data["prices_include_tax"] = "on"

    response = admin_site.post(url, data)

    assert response.status_code == 302, response.context and response.context["errors"]
    assert events() == [
        (
            "boss@example.com",
            "admin",
            "update",
            f"taxsettings:{settings_row.pk}",
            {"prices_include_tax": change(before, not before)},
        )
    ]


# --- What is not recorded -------------------------------------------------------------------


def test_a_customer_placing_and_cancelling_an_order_leaves_no_event(
    client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    make_product(sku="lamp", stock=5)
    client = client_for(UserFactory(roles=[Role.CUSTOMER]))
    with django_capture_on_commit_callbacks(execute=True):
        placed = client.post(
            "/api/orders",
            {"items": [{"id": "lamp", "quantity": 1}], "payment_token": "tok_success"},
        )
    assert placed.status_code == 201, placed.content
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = client.post(f"/api/orders/{placed.json()['id']}/cancel")

    assert cancelled.status_code == 200, cancelled.content
    assert events() == []


def test_a_change_with_no_actor_or_rolled_back_leaves_no_event(admin_site: Client) -> None:
    make_product(sku="lamp", price="10.00", stock=1)
    variant = ProductVariant.objects.get(sku="lamp")
    boss = admin_site.get("/admin/").wsgi_request.user

    update_variant(variant=variant, price=Decimal("11.00"))  # no actor: a worker, a shell
    assert events() == []

    def change_then_fail() -> None:
        with audit.acting(source="api", user=lambda: boss), transaction.atomic():
            update_variant(variant=variant, price=Decimal("12.00"))
            assert AuditEvent.objects.count() == 1
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        change_then_fail()
    assert events() == []
    assert ProductVariant.objects.get(pk=variant.pk).price == Decimal("11.00")


def test_secrets_are_recorded_as_changed_never_in_clear(admin_site: Client) -> None:
    clerk = UserFactory(email="clerk@example.com", is_staff=True)
    boss = admin_site.get("/admin/").wsgi_request.user

    with audit.acting(source="admin", user=lambda: boss):
        clerk.set_password("a-new-secret-123")
        clerk.save(update_fields=["password"])

    ((_, _, action, _, changes),) = events()
    assert (action, changes) == ("update", {"password": change("[redacted]", "[redacted]")})
    assert audit.safe_changes({"api_key": ("a", "b"), "meta": ({"token": "t"}, {})}) == {
        "api_key": change("[redacted]", "[redacted]"),
        "meta": change({"token": "[redacted]"}, {}),
    }


# --- Append-only ------------------------------------------------------------------------------


@pytest.fixture
def one_event(boss: Any) -> AuditEvent:
    variant = make_product(sku="lamp", price="10.00", stock=1).variant
    with audit.acting(source="api", user=lambda: boss):
        update_variant(variant=variant, price=Decimal("11.00"))
    return AuditEvent.objects.get()


def _execute_alone(statement: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        # The suite's flush may truncate (tests/conftest.py); nothing else may. TRUNCATE
        # also needs the test transaction's deferred foreign key checks done first.
        cursor.execute("SET LOCAL ecommerce.audit_truncate = ''")
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditevent SET action = 'forged'",
        "UPDATE audit_auditevent SET changes = '{}'::jsonb",
        "UPDATE audit_auditevent SET actor_id = NULL, actor_label = 'nobody'",
        "DELETE FROM audit_auditevent",
        "TRUNCATE audit_auditevent",
    ],
)
def test_the_database_refuses_to_edit_or_delete_events(
    one_event: AuditEvent, statement: str
) -> None:
    with pytest.raises(DatabaseError, match="append-only"):
        _execute_alone(statement)
    assert AuditEvent.objects.get().action == one_event.action


def test_deleting_the_actor_keeps_the_event_with_its_label(
    one_event: AuditEvent, boss: Any
) -> None:
    boss.delete()

    event = AuditEvent.objects.get()
    assert (event.actor_id, event.actor_label, event.changes) == (
        None,
        "boss@example.com",
        one_event.changes,
    )


# --- Reading it: API and admin ----------------------------------------------------------------


def test_the_api_lists_and_filters_events_for_staff_with_the_permission(
    one_event: AuditEvent, boss: Any, client_for: Any, api_client: Any
) -> None:
    staff = client_for(boss)
    body = staff.get("/api/audit-events").json()
    assert body["count"] == 1
    (item,) = body["results"]
    assert item == {
        "id": one_event.pk,
        "occurred_at": item["occurred_at"],
        "actor": boss.pk,
        "actor_label": "boss@example.com",
        "source": "api",
        "action": "update",
        "object_type": "catalog.productvariant",
        "object_id": one_event.object_id,
        "object_repr": one_event.object_repr,
        "changes": {"price": change("10.00", "11.00")},
        "request_id": "",
    }
    assert staff.get(f"/api/audit-events/{one_event.pk}").json() == item

    matching = {
        "actor": boss.pk,
        "action": "update",
        "source": "api",
        "object_type": "catalog.productvariant",
        "object_id": one_event.object_id,
        "since": "2000-01-01T00:00:00Z",
        "ordering": "-occurred_at",
    }
    for name, value in matching.items():
        assert staff.get("/api/audit-events", {name: value}).json()["count"] == 1, name
    missing = {
        "actor": boss.pk + 1000,
        "action": "delete",
        "source": "admin",
        "object_type": "catalog.product",
        "object_id": "0",
        "until": "2000-01-01T00:00:00Z",
    }
    for name, value in missing.items():
        assert staff.get("/api/audit-events", {name: value}).json()["count"] == 0, name

    for name, value in {
        "since": "yesterday",
        "until": "2026-13-01T00:00:00Z",
        "actor": "me",
        "source": "shell",
        "object_type": "productvariant",
        "action": "",
        "ordering": "actor_label",
    }.items():
        response = staff.get("/api/audit-events", {name: value})
        assert response.status_code == 400, (name, response.content)
        assert response["Content-Type"] == PROBLEM

    assert staff.get("/api/audit-events/999999").status_code == 404
    assert api_client.get("/api/audit-events").status_code == 401
    for role in (Role.SUPPORT, Role.CATALOG_MANAGER, Role.CUSTOMER):
        refused = client_for(UserFactory(roles=[role])).get("/api/audit-events")
        assert refused.status_code == 403, role
        assert refused["Content-Type"] == PROBLEM
    assert (
        client_for(UserFactory(roles=[Role.SUPPORT]))
        .get(f"/api/audit-events/{one_event.pk}")
        .status_code
        == 403
    )


def test_nothing_is_written_through_the_api(
    one_event: AuditEvent, boss: Any, client_for: Any
) -> None:
    staff = client_for(boss)
    for method in ("post", "put", "patch", "delete"):
        assert getattr(staff, method)(f"/api/audit-events/{one_event.pk}").status_code == 405
    assert staff.post("/api/audit-events", {}).status_code == 405


def test_the_admin_lists_and_shows_events_read_only(
    one_event: AuditEvent, admin_site: Client
) -> None:
    listing = admin_site.get("/admin/audit/auditevent/", {"q": one_event.object_id})
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "boss@example.com" in html
    assert f"/admin/catalog/productvariant/{one_event.object_id}/change/" in html or (
        one_event.object_repr in html
    )
    assert "/admin/audit/auditevent/add/" not in html
    for filters in (
        {"action__exact": "update"},
        {"source__exact": "api"},
        {"content_type__id__exact": str(one_event.content_type_id)},
        {"actor__id__exact": str(one_event.actor_id)},
        {"occurred_at__year": str(one_event.occurred_at.year)},
        {"q": "boss@"},
    ):
        filtered = admin_site.get("/admin/audit/auditevent/", filters)
        assert filtered.status_code == 200, filters
        assert filtered.context["cl"].result_count == 1, filters
    assert admin_site.get("/admin/audit/auditevent/", {"q": "a\x00b"}).status_code == 400

    page = admin_site.get(f"/admin/audit/auditevent/{one_event.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert '<table class="audit-changes">' in html
    assert "<td>price</td><td>10.00</td><td>11.00</td>" in html
    assert 'name="_save"' not in html
    assert admin_site.get("/admin/audit/auditevent/add/").status_code == 403
    assert admin_site.post(f"/admin/audit/auditevent/{one_event.pk}/delete/").status_code == 403
    assert AuditEvent.objects.count() == 1


def test_the_admin_role_may_read_the_log_and_support_may_not(one_event: AuditEvent) -> None:
    support = Client()
    support.force_login(UserFactory(is_staff=True, roles=[Role.SUPPORT]))
    assert support.get("/admin/audit/auditevent/").status_code == 403
    assert (
        Group.objects.get(name=Role.ADMIN)
        .permissions.filter(codename="view_auditevent", content_type__app_label="audit")
        .exists()
    )
