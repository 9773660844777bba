"""The Catena-X aspect models as rules over the record messages. Pure data, no I/O.

The protobuf messages give the structure (properties by ``json_name``, nesting, arrays); this
table adds what the JSON schemas say beyond it: which properties are required, how each
scalar is checked, array bounds, what makes array items distinct, and a few rules that span
properties. ``RULES`` has an entry for every field of every Catena-X record message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from google.protobuf.message import Message

from protos.scfed.v1 import records_pb2 as pb
from scfed.catenax import _scalars as s

#: Most items one array may hold, and all arrays of one payload together.
MAX_ITEMS = 10_000
MAX_TOTAL_ITEMS = 200_000

#: The aspect models by name, each with its record message.
MODELS: Mapping[str, type[Message]] = {
    "WeekBasedMaterialDemand": pb.WeekBasedMaterialDemand,
    "WeekBasedCapacityGroup": pb.WeekBasedCapacityGroup,
    "ItemStock": pb.ItemStock,
    "PlannedProductionOutput": pb.PlannedProductionOutput,
    "DeliveryInformation": pb.DeliveryInformation,
    "DaysOfSupply": pb.DaysOfSupply,
    "DemandAndCapacityNotification": pb.DemandAndCapacityNotification,
    "ShortTermMaterialDemand": pb.ShortTermMaterialDemand,
}


@dataclass(frozen=True)
class Rule:
    """What the schema says of one property.

    ``scalar`` is None for an object or an array of objects. An array is a ``repeated`` field
    when required, else a message holding ``repeated items``. ``key`` names the properties
    (dotted JSON names) that must differ between items; empty means whole items must differ,
    which is the schemas' ``uniqueItems``.
    """

    scalar: s.Scalar | None
    required: bool
    array: bool = False
    min_items: int = 0
    max_items: int = MAX_ITEMS
    key: tuple[str, ...] = ()


def req(scalar: s.Scalar | None = None) -> Rule:
    return Rule(scalar, required=True)


def opt(scalar: s.Scalar | None = None) -> Rule:
    return Rule(scalar, required=False)


def array(
    scalar: s.Scalar | None = None,
    *,
    required: bool = True,
    key: tuple[str, ...] = (),
    min_items: int = 0,
    max_items: int = MAX_ITEMS,
) -> Rule:
    return Rule(scalar, required, array=True, min_items=min_items, max_items=max_items, key=key)


_UUID_RE = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
UUID = s.Scalar(s.pattern(f"(?:urn:uuid:)?{_UUID_RE}", "a UUID, optionally urn:uuid:-prefixed"))
BPNL = s.Scalar(s.pattern("BPNL[a-zA-Z0-9]{12}", "a BPNL ('BPNL' and 12 letters or digits)"))
BPNS = s.Scalar(s.pattern("BPNS[a-zA-Z0-9]{12}", "a BPNS ('BPNS' and 12 letters or digits)"))
BPNA = s.Scalar(s.pattern("BPNA[a-zA-Z0-9]{12}", "a BPNA ('BPNA' and 12 letters or digits)"))
# Identifiers (material numbers, order ids, names) must say something; free text need not.
ID = s.Scalar(partial(s.text, blank=False))
TEXT = s.Scalar(s.text)
USER_INPUT = s.Scalar(partial(s.text, max_len=s.MAX_USER_INPUT))
BOOL = s.Scalar(s.boolean)
DATE = s.Scalar(s.calendar_date)
MONDAY = s.Scalar(s.monday)
DATE_TIME = s.Scalar(s.rfc3339)
TIMESTAMP = s.Scalar(s.samm_timestamp)
UNIT = s.Scalar(s.choice(s.UNITS, "a Catena-X unit such as 'unit:piece', or a scfed wafer unit"))
QUANTITY = s.number()
QUANTITY_TRAIT = s.number(maximum=s.QUANTITY_TRAIT_MAX)
SIGNED = s.number(minimum=None)
RATIO = s.number(maximum=Decimal(1))
# MeasurementTrait: "an integer > 0", 1 to 999.
MEASUREMENT = s.number(minimum=Decimal(1), maximum=Decimal(999), integral=True)
CATEGORY = s.Scalar(
    s.choice(
        ("0001", "A1S1", "SR99", "PI01", "OS01", "OI01", "ED01", "PO01"), "a demand category code"
    )
)
DIRECTION = s.Scalar(s.choice(("INBOUND", "OUTBOUND"), "'INBOUND' or 'OUTBOUND'"))
_EVENTS = ("estimated-departure", "estimated-arrival", "actual-departure", "actual-arrival")
EVENT_TYPE = s.Scalar(s.choice(_EVENTS, "one of " + ", ".join(_EVENTS)))
_INCOTERMS = ("EXW", "FCA", "CPT", "CIP", "DAP", "DAT", "DPU", "DDP", "FAS", "FOB", "CFR", "CIF")
INCOTERM = s.Scalar(s.choice(_INCOTERMS, "an Incoterm (EXW, FCA, ..., CIF)"))
_CAUSES = (
    "strike", "natural-disaster", "production-incident", "pandemic-or-epidemic",
    "logistics-disruption", "war", "insolvency", "other",
)  # fmt: skip
ROOT_CAUSE = s.Scalar(s.choice(_CAUSES, "one of " + ", ".join(_CAUSES)))
_EFFECTS = ("demand-reduction", "demand-increase", "capacity-reduction", "capacity-increase")
EFFECT = s.Scalar(s.choice(_EFFECTS, "one of " + ", ".join(_EFFECTS)))
STATUS = s.Scalar(s.choice(("resolved", "open"), "'resolved' or 'open'"))

_WBMD = pb.WeekBasedMaterialDemand
_WBCG = pb.WeekBasedCapacityGroup
_DI = pb.DeliveryInformation
_DCN = pb.DemandAndCapacityNotification
_STMD = pb.ShortTermMaterialDemand
_SERIES_KEY = ("customerLocation", "demandCategory.demandCategoryCode")

RULES: Mapping[type[Message], Mapping[str, Rule]] = {
    pb.ItemQuantity: {"value": req(QUANTITY), "unit": req(UNIT)},
    pb.OrderPositionReference: {
        "supplier_order_id": opt(ID),
        "customer_order_id": req(ID),
        "customer_order_position_id": req(ID),
    },
    pb.DemandCategory: {"demand_category_code": req(CATEGORY)},
    _WBMD: {
        "material_demand_id": req(UUID),
        # DemandSeriesSet: "unique combination of customer location and demand category".
        "demand_series": array(key=_SERIES_KEY),
        "customer": req(BPNL),
        "supplier": req(BPNL),
        "unit_of_measure": opt(UNIT),
        "material_number_customer": req(ID),
        "material_number_supplier": opt(ID),
        "material_description_customer": req(TEXT),
        "changed_at": req(DATE_TIME),
        "material_global_asset_id": opt(UUID),
        "unit_of_measure_is_omitted": req(BOOL),
        "material_demand_is_inactive": req(BOOL),
    },
    _WBMD.DemandSeries: {
        "customer_location": req(BPNS),
        "demand_category": req(),
        # A time series: two demands for one point in time would be counted twice.
        "demands": array(key=("pointInTime",)),
        "expected_supplier_location": opt(BPNS),
    },
    _WBMD.Demand: {"demand": req(QUANTITY_TRAIT), "point_in_time": req(DATE)},
    _WBCG: {
        "capacity_group_id": req(UUID),
        "name": req(ID),
        "supplier_locations": array(BPNS, required=False),
        "customer": req(BPNL),
        "supplier": req(BPNL),
        "unit_of_measure": opt(UNIT),
        "linked_demand_series": array(required=False),
        "capacities": array(required=False, key=("pointInTime",)),
        "changed_at": req(DATE_TIME),
        "linked_capacity_groups": array(UUID, required=False),
        "unit_of_measure_is_omitted": req(BOOL),
        "demand_volatility_parameters": opt(),
        "capacity_group_is_inactive": req(BOOL),
    },
    _WBCG.LinkedDemandSeries: {
        "material_number_customer": req(ID),
        "material_number_supplier": opt(ID),
        "customer_location": req(BPNS),
        "demand_category": req(),
        # A production-intensity factor: negative makes no sense.
        "load_factor": opt(QUANTITY),
    },
    _WBCG.Capacity: {
        # "Must be given as date of the monday in the week."
        "point_in_time": req(MONDAY),
        "actual_capacity": req(QUANTITY_TRAIT),
        "maximum_capacity": req(QUANTITY_TRAIT),
        # "Can be positive and negative."
        "delta_production_result": opt(SIGNED),
        "agreed_capacity": opt(QUANTITY_TRAIT),
    },
    _WBCG.DemandVolatility: {
        "start_reference_date_time": req(TIMESTAMP),
        "measurement_interval": req(MEASUREMENT),
        "rolling_horizon_alert_thresholds": array(required=False, key=("sequenceNumber",)),
    },
    _WBCG.RollingHorizonAlertThreshold: {
        "sequence_number": req(MEASUREMENT),
        "subhorizon_length": req(MEASUREMENT),
        # Thresholds are magnitudes: "-30% = 0,3", "-100 (units) = 100".
        "relative_positive_deviation": opt(QUANTITY),
        "relative_negative_deviation": opt(RATIO),
        "absolute_positive_deviation": opt(QUANTITY),
        "absolute_negative_deviation": opt(QUANTITY),
    },
    pb.ItemStock: {
        "positions": array(),
        "material_global_asset_id": req(UUID),
        "direction": req(DIRECTION),
    },
    pb.ItemStock.Position: {
        "order_position_reference": opt(),
        # "Per location ... at maximum one blocked and one non blocked stock."
        "allocated_stocks": array(key=("stockLocationBPNS", "stockLocationBPNA", "isBlocked")),
    },
    pb.ItemStock.AllocatedStock: {
        "quantity_on_allocated_stock": req(),
        "stock_location_bpns": req(BPNS),
        "is_blocked": req(BOOL),
        "stock_location_bpna": req(BPNA),
        "last_updated_on_date_time": req(TIMESTAMP),
    },
    pb.PlannedProductionOutput: {"positions": array(), "material_global_asset_id": req(UUID)},
    pb.PlannedProductionOutput.Position: {
        "order_position_reference": opt(),
        "allocated_planned_production_outputs": array(),
    },
    pb.PlannedProductionOutput.AllocatedPlannedProductionOutput: {
        "planned_production_quantity": req(),
        "production_site_bpns": req(BPNS),
        "estimated_time_of_completion": req(TIMESTAMP),
        "last_updated_on_date_time": req(TIMESTAMP),
    },
    _DI: {"positions": array(), "material_global_asset_id": req(UUID)},
    _DI.Position: {"order_position_reference": opt(), "deliveries": array()},
    _DI.Delivery: {
        "delivery_quantity": req(),
        "last_updated_on_date_time": req(TIMESTAMP),
        "transit_events": array(min_items=1, max_items=2),
        "transit_locations": req(),
        "tracking_number": opt(ID),
        "incoterm": opt(INCOTERM),
    },
    _DI.TransitEvent: {"date_time_of_event": req(TIMESTAMP), "event_type": req(EVENT_TYPE)},
    _DI.TransitLocations: {"origin": req(), "destination": req()},
    _DI.Location: {"bpna_property": opt(BPNA), "bpns_property": req(BPNS)},
    pb.DaysOfSupply: {
        "material_global_asset_id": req(UUID),
        "direction": req(DIRECTION),
        "allocated_days_of_supply": array(),
    },
    pb.DaysOfSupply.AllocatedDaysOfSupply: {
        "amount_of_allocated_days_of_supply": array(key=("date",)),
        "stock_location_bpns": req(BPNS),
        "stock_location_bpna": req(BPNA),
        "last_updated_on_date_time": req(TIMESTAMP),
    },
    # Days until the stock runs out: a count of days, never negative.
    pb.DaysOfSupply.QuantityOfDaysOfSupply: {
        "date": req(TIMESTAMP),
        "days_of_supply": req(QUANTITY),
    },
    _DCN: {
        "affected_sites_sender": array(BPNS, required=False),
        "affected_sites_recipient": array(BPNS, required=False),
        "leading_root_cause": req(ROOT_CAUSE),
        "effect": req(EFFECT),
        "text": opt(USER_INPUT),
        "start_date_of_effect": req(TIMESTAMP),
        "expected_end_date_of_effect": opt(TIMESTAMP),
        "status": req(STATUS),
        "content_changed_at": req(TIMESTAMP),
        "source_disruption_id": req(UUID),
        "notification_id": req(UUID),
        "related_notification_ids": array(UUID, required=False),
        "materials_affected": array(required=False),
        "resolving_measure_description": opt(USER_INPUT),
    },
    _DCN.Material: {
        "material_global_asset_id": opt(UUID),
        "material_number_customer": opt(ID),
        "material_number_supplier": opt(ID),
    },
    _STMD: {
        "demand_series": array(key=("customerLocationBpns", "demandCategory.demandCategoryCode")),
        "material_global_asset_id": req(UUID),
    },
    _STMD.DemandSeries: {
        "demands": array(key=("day",)),
        "demand_category": req(),
        "expected_supplier_location_bpns": opt(BPNS),
        "customer_location_bpns": req(BPNS),
        "last_updated_on_date_time": req(TIMESTAMP),
    },
    _STMD.Demand: {"demand": req(), "day": req(DATE)},
}


# ---- rules that span properties: each gives (JSON property, reason) when broken ----

Problem = tuple[str, str] | None


def _unit_given(record: Any) -> Problem:
    """unitOfMeasureIsOmitted: true means the unit MUST NOT be sent, false that it MUST."""
    if record.unit_of_measure_is_omitted and record.HasField("unit_of_measure"):
        return "unitOfMeasure", "must be left out when unitOfMeasureIsOmitted is true"
    if not record.unit_of_measure_is_omitted and not record.HasField("unit_of_measure"):
        return "unitOfMeasure", "is missing (required when unitOfMeasureIsOmitted is false)"
    return None


def _actual_within_maximum(capacity: Any) -> Problem:
    """Flexible capacity is maximum minus actual, so actual cannot exceed the maximum."""
    if Decimal(capacity.actual_capacity) > Decimal(capacity.maximum_capacity):
        return "actualCapacity", (
            f"must not exceed maximumCapacity {capacity.maximum_capacity},"
            f" got {capacity.actual_capacity}"
        )
    return None


def _material_identified(material: Any) -> Problem:
    """ "A material MUST be identified by at least one of the material numbers"."""
    names = ("material_global_asset_id", "material_number_customer", "material_number_supplier")
    if not any(material.HasField(name) for name in names):
        return "materialNumberSupplier", (
            "is missing: a material needs materialGlobalAssetId, materialNumberCustomer"
            " or materialNumberSupplier"
        )
    return None


CONSTRAINTS: Mapping[type[Message], tuple[Callable[[Any], Problem], ...]] = {
    _WBMD: (_unit_given,),
    _WBCG: (_unit_given,),
    _WBCG.Capacity: (_actual_within_maximum,),
    _DCN.Material: (_material_identified,),
}
