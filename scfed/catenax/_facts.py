"""The weekly figures a record contributes (see the package docstring for the mapping). Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from google.protobuf.message import Message

from protos.scfed.v1 import records_pb2 as pb
from scfed.catenax._scalars import instant, local_day

#: Levels that cannot be added up: several of them in one week give their smallest.
_LEVELS = frozenset({"days_of_supply"})


@dataclass(frozen=True)
class RawFact:
    """One weekly quantity of one item, as the record gives it (before any taxonomy)."""

    metric: str
    item: str
    week: date
    quantity: Decimal
    unit: str


def iso_monday(day: date) -> date:
    """The Monday of the ISO week ``day`` falls in."""
    return day - timedelta(days=day.weekday())


def facts(message: Message) -> list[RawFact]:
    """The record's weekly quantities, one per (metric, item, week, unit), in that order."""
    extract = _EXTRACTORS.get(type(message))
    if extract is None:
        raise TypeError(f"{message.DESCRIPTOR.full_name} is not a scfed record")
    merged: dict[tuple[str, str, date, str], Decimal] = {}
    for metric, item, day, quantity, unit in extract(message):
        key = (metric, item, iso_monday(day), unit)
        value = Decimal(quantity)
        held = merged.get(key)
        if held is not None:
            value = min(held, value) if metric in _LEVELS else held + value
        merged[key] = value
    return [RawFact(m, item, week, q, unit) for (m, item, week, unit), q in sorted(merged.items())]


_Raw = tuple[str, str, date, str, str]  # metric, item, day, decimal text, unit


def _material_demand(record: Any) -> Iterator[_Raw]:
    # DCM: an inactive material demand is not maintained and takes no part in the matching.
    if record.material_demand_is_inactive:
        return
    supplier = record.HasField("material_number_supplier")
    item = record.material_number_supplier if supplier else record.material_number_customer
    unit = record.unit_of_measure  # "" when left out by agreement (unitOfMeasureIsOmitted)
    for series in record.demand_series:
        for demand in series.demands:
            day = date.fromisoformat(demand.point_in_time)
            yield "demand", item, day, demand.demand, unit


def _capacity_group(record: Any) -> Iterator[_Raw]:
    if record.capacity_group_is_inactive:
        return
    item, unit = record.capacity_group_id, record.unit_of_measure
    for capacity in record.capacities.items:
        day = date.fromisoformat(capacity.point_in_time)
        yield "capacity_actual", item, day, capacity.actual_capacity, unit
        yield "capacity_max", item, day, capacity.maximum_capacity, unit


def _item_stock(record: Any) -> Iterator[_Raw]:
    metric = "stock_inbound" if record.direction == "INBOUND" else "stock_outbound"
    item = record.material_global_asset_id
    for position in record.positions:
        for stock in position.allocated_stocks:
            quantity = stock.quantity_on_allocated_stock
            day = local_day(stock.last_updated_on_date_time)
            yield metric, item, day, quantity.value, quantity.unit


def _planned_production(record: Any) -> Iterator[_Raw]:
    item = record.material_global_asset_id
    for position in record.positions:
        for output in position.allocated_planned_production_outputs:
            quantity = output.planned_production_quantity
            day = local_day(output.estimated_time_of_completion)
            yield "production_planned", item, day, quantity.value, quantity.unit


def _delivery(record: Any) -> Iterator[_Raw]:
    item = record.material_global_asset_id
    for position in record.positions:
        for delivery in position.deliveries:
            # The latest event is when the goods arrive, or are last known to move.
            moments = [event.date_time_of_event for event in delivery.transit_events]
            when = max(moments, key=instant) if moments else delivery.last_updated_on_date_time
            quantity = delivery.delivery_quantity
            yield "delivery", item, local_day(when), quantity.value, quantity.unit


def _days_of_supply(record: Any) -> Iterator[_Raw]:
    item = record.material_global_asset_id
    for allocated in record.allocated_days_of_supply:
        for amount in allocated.amount_of_allocated_days_of_supply:
            day = local_day(amount.date)
            yield "days_of_supply", item, day, amount.days_of_supply, "unit:day"


def _short_term_demand(record: Any) -> Iterator[_Raw]:
    item = record.material_global_asset_id
    for series in record.demand_series:
        for demand in series.demands:
            day = date.fromisoformat(demand.day)
            yield "demand_short_term", item, day, demand.demand.value, demand.demand.unit


def _nothing(record: Any) -> Iterator[_Raw]:
    return iter(())


def _columns(*metrics: tuple[str, str], unit: str | None = None) -> Callable[[Any], Iterator[_Raw]]:
    """Facts of an extension row: each (metric, column) at the row's week."""

    def extract(row: Any) -> Iterator[_Raw]:
        week = date.fromisoformat(row.week)
        for metric, column in metrics:
            yield metric, row.item, week, getattr(row, column), unit or row.unit

    return extract


_EXTRACTORS: Mapping[type[Message], Callable[[Any], Iterable[_Raw]]] = {
    pb.WeekBasedMaterialDemand: _material_demand,
    pb.WeekBasedCapacityGroup: _capacity_group,
    pb.ItemStock: _item_stock,
    pb.PlannedProductionOutput: _planned_production,
    pb.DeliveryInformation: _delivery,
    pb.DaysOfSupply: _days_of_supply,
    pb.DemandAndCapacityNotification: _nothing,
    pb.ShortTermMaterialDemand: _short_term_demand,
    pb.OrderBook: _columns(
        ("bookings", "bookings"), ("billings", "billings"), ("backlog", "backlog")
    ),
    pb.QuotedLeadTime: _columns(("lead_time_weeks", "lead_time_weeks"), unit="unit:week"),
    pb.FabUtilisation: _columns(
        ("wafer_starts_capacity", "wafer_starts_capacity"),
        ("wafer_starts_actual", "wafer_starts_actual"),
    ),
    pb.WorkInProgress: _columns(("stock_wip", "quantity")),
    pb.FinishedGoods: _columns(("stock_finished", "quantity")),
}
