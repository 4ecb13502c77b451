"""An order as its provider sees it, and back: the request, the ref, the validation tasks.

The store keeps an order as columns and JSON; adapters speak OrderRequest, ProviderRef and
ValidationTask. Every translation between the two is here, so that sending, checking and
reconciling an order describe it to the provider in exactly the same words.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any
from urllib.parse import urlsplit

from panel_ssl_plugin.providers.base import (
    Contact,
    DcvMethod,
    OrderRequest,
    OrganizationAddress,
    PlacementKind,
    ProviderHost,
    ProviderRef,
    ValidationTask,
)
from panel_ssl_plugin.store import OrderRecord


def to_ref(order: OrderRecord) -> ProviderRef:
    """How the provider finds the order again."""
    return ProviderRef(
        order_id=order.provider_order_id or "",
        data=order.provider_data,
        validation=tuple(task_from_json(t) for t in order.validation),
    )


def request_of(order: OrderRecord) -> OrderRequest:
    """What placing (or renewing) the order asks of the provider. The contact works at the
    organization, so an OV/EV order's contact has the organization's address too."""
    contact = order.contact
    address = OrganizationAddress(**order.organization_address)
    return OrderRequest(
        product_id=order.product_id,
        period_months=order.period_months,
        csr=order.csr,
        domain=order.domain,
        dcv_method=DcvMethod(order.dcv_method),
        server_type=order.server_type,
        sans=tuple(order.sans),
        approver_email=order.approver_email,
        organization=order.organization,
        unit=order.unit,
        state=order.state,
        country=order.country,
        contact=Contact(
            first_name=contact.get("first_name", ""),
            last_name=contact.get("last_name", ""),
            email=contact.get("email", ""),
            phone=contact.get("phone", ""),
            title=contact.get("title", ""),
            organization=order.organization,
            address=address.street,
            city=address.city,
            postal_code=address.postal_code,
            state=order.state,
            country=order.country,
        ),
        addons=tuple(order.addons),
        idempotency_key=order.idempotency_key,
        organization_address=address,
        san_approvers=dict(order.san_approvers),
    )


def kind_of(order: OrderRecord) -> PlacementKind:
    """Which create call sends the order: a reissue, a renewal or a new order."""
    if order.reissue_of is not None:
        return PlacementKind.REISSUE
    return PlacementKind.ORDER if order.renewal_of is None else PlacementKind.RENEWAL


def task_from_json(values: dict[str, Any]) -> ValidationTask:
    return ValidationTask(**{**values, "method": DcvMethod(values["method"])})


def tasks_json(tasks: tuple[ValidationTask, ...]) -> list[dict[str, Any]]:
    return [{**asdict(t), "method": str(t.method)} for t in tasks]


def publish_tasks(
    host: ProviderHost, tasks: tuple[ValidationTask, ...]
) -> tuple[ValidationTask, ...]:
    """Hand every HTTP file and DNS record still to publish to the host, whatever the provider.

    A host that owns the site's docroot or DNS zone then validates without the user lifting a
    finger; one that cannot leaves the task unpublished, and the details page shows it.
    """
    return tuple(replace(task, published=task.published or _publish(host, task)) for task in tasks)


def _publish(host: ProviderHost, task: ValidationTask) -> bool:
    if task.method == DcvMethod.HTTP:
        path = urlsplit(task.location).path.lstrip("/")
        return host.publish_http_file(task.domain, path, task.value)
    if task.method == DcvMethod.DNS:
        return host.publish_dns_record(task.domain, task.location, task.record_type, task.value)
    return False
