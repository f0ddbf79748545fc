"""A marketplace day, generated: customers with Greek names and addresses, produce, orders.

Deterministic for a seed, so a demo or a soak test can be replayed exactly. Used by
``dixis-integrations demo`` and by the tests; it makes events only and calls nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from dixis_integrations.models.address import Address
from dixis_integrations.models.customer import (
    AcquisitionSource,
    ConsentStatus,
    Customer,
    MarketingConsent,
)
from dixis_integrations.models.events import (
    CustomerCreated,
    Event,
    OrderCancelled,
    OrderCreated,
    OrderPaid,
    OrderRefunded,
)
from dixis_integrations.models.money import Money
from dixis_integrations.models.order import Order, OrderLine, Payment, PaymentMethod, Refund
from dixis_integrations.models.product import SaleUnit
from dixis_integrations.models.tax import VatCategory

__all__ = ["PRODUCE", "SENDER", "MarketDay", "market_day"]

_FIRST = (
    ("Γιώργος", "Giorgos"),
    ("Μαρία", "Maria"),
    ("Δημήτρης", "Dimitris"),
    ("Ελένη", "Eleni"),
    ("Νίκος", "Nikos"),
    ("Κατερίνα", "Katerina"),
    ("Κώστας", "Kostas"),
    ("Σοφία", "Sofia"),
    ("Γιάννης", "Giannis"),
    ("Αγγελική", "Angeliki"),
    ("Παναγιώτης", "Panagiotis"),
    ("Δέσποινα", "Despoina"),
)
_LAST = (
    ("Παπαδόπουλος", "papadopoulos"),
    ("Γεωργίου", "georgiou"),
    ("Οικονόμου", "oikonomou"),
    ("Νικολάου", "nikolaou"),
    ("Καραγιάννης", "karagiannis"),
    ("Βασιλείου", "vasileiou"),
    ("Μακρής", "makris"),
    ("Αθανασίου", "athanasiou"),
    ("Δημητρίου", "dimitriou"),
    ("Ιωάννου", "ioannou"),
)
_PLACES = (
    ("Αθήνα", "10431", "Αττική", ("Ερμού", "Σταδίου", "Πατησίων", "Αχαρνών")),
    ("Θεσσαλονίκη", "54624", "Κεντρική Μακεδονία", ("Τσιμισκή", "Εγνατία", "Αγίας Σοφίας")),
    ("Πάτρα", "26221", "Δυτική Ελλάδα", ("Μαιζώνος", "Κορίνθου", "Ρήγα Φεραίου")),
    ("Ηράκλειο", "71202", "Κρήτη", ("Καλοκαιρινού", "25ης Αυγούστου", "Έβανς")),
    ("Λάρισα", "41222", "Θεσσαλία", ("Κύπρου", "Παπαναστασίου", "Ασκληπιού")),
    ("Ιωάννινα", "45221", "Ήπειρος", ("Δωδώνης", "Αβέρωφ", "Μιχαήλ Αγγέλου")),
    ("Βόλος", "38221", "Θεσσαλία", ("Ιάσονος", "Δημητριάδος", "Κουμουνδούρου")),
    ("Καλαμάτα", "24100", "Πελοπόννησος", ("Αριστομένους", "Φαρών", "Ναυαρίνου")),
)
PRODUCE: dict[str, tuple[str, str, SaleUnit, VatCategory]] = {
    "TOM-1KG": ("Ντομάτες Κρήτης", "3.20", SaleUnit.KG, VatCategory.REDUCED),
    "CUC-PC": ("Αγγούρι", "0.80", SaleUnit.PIECE, VatCategory.REDUCED),
    "OIL-1L": ("Ελαιόλαδο Καλαμάτας", "11.90", SaleUnit.PIECE, VatCategory.REDUCED),
    "FETA-400": ("Φέτα ΠΟΠ 400γρ", "5.40", SaleUnit.PIECE, VatCategory.REDUCED),
    "HON-450": ("Μέλι θυμαρίσιο", "8.50", SaleUnit.PIECE, VatCategory.REDUCED),
    "ORA-2KG": ("Πορτοκάλια Άργους", "3.60", SaleUnit.PIECE, VatCategory.REDUCED),
    "APL-1KG": ("Μήλα Ζαγοράς", "2.40", SaleUnit.KG, VatCategory.REDUCED),
    "WINE-750": ("Κρασί Αγιωργίτικο", "12.00", SaleUnit.PIECE, VatCategory.STANDARD),
}
"""SKU -> (name, VAT-inclusive unit price in EUR, unit, VAT category)."""

SENDER = Address(
    name="Dixis Fresh",
    company="Dixis Fresh Μ.Ι.Κ.Ε.",
    street="Λεωφόρος Κηφισού",
    number="100",
    city="Αθήνα",
    postcode="12241",
    region="Αττική",
    mobile="6900000000",
    email="logistics@dixis.example",
)
"""The demo marketplace's warehouse, where parcels leave from."""


@dataclass
class MarketDay:
    """The day's events in order, the opening stock, and what each SKU sells."""

    events: list[Event] = field(default_factory=list)
    opening_stock: dict[str, Decimal] = field(default_factory=dict)
    sold: dict[str, Decimal] = field(default_factory=dict)
    customers: int = 0
    orders: int = 0


def _customer(rng: random.Random, i: int, day: datetime) -> Customer:
    first, first_latin = rng.choice(_FIRST)
    last, last_latin = rng.choice(_LAST)
    city, postcode, region, streets = rng.choice(_PLACES)
    address = Address(
        name=f"{first} {last}",
        street=rng.choice(streets),
        number=str(rng.randint(1, 180)),
        city=city,
        postcode=postcode,
        region=region,
        mobile=f"69{rng.randint(10_000_000, 99_999_999)}",
    )
    consent = MarketingConsent(
        status=ConsentStatus.GRANTED if rng.random() < 0.6 else ConsentStatus.DENIED,
        source="checkout",
        timestamp=day,
    )
    return Customer(
        id=f"C{i:05d}",
        email=f"{first_latin.lower()}.{last_latin}{i}@example.gr",
        first_name=first,
        last_name=last,
        phone=address.mobile,
        shipping_address=address,
        billing_address=address,
        consent=consent,
        acquisition=AcquisitionSource(channel=rng.choice(("organic", "facebook", "newsletter"))),
        created_at=day,
    )


def market_day(
    *,
    orders: int = 300,
    customers: int | None = None,
    seed: int = 7,
    day: datetime | None = None,
    follow_ups: bool = True,
) -> MarketDay:
    """Generate a day of a Greek produce marketplace.

    Args:
        orders: how many orders are placed.
        customers: how many customers (default: about a third of the orders).
        seed: the random seed; the same seed gives the same day.
        day: the morning of the day (aware UTC; default: today 06:00 UTC).
        follow_ups: add payments, a few cancellations and refunds.
    """
    rng = random.Random(seed)
    start = day or datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    n_customers = customers or max(1, orders // 3)
    out = MarketDay()
    people = [_customer(rng, i + 1, start) for i in range(n_customers)]
    for person in people:
        out.events.append(CustomerCreated(customer=person, occurred_at=start))
    out.customers = len(people)
    skus = list(PRODUCE)
    sold: dict[str, Decimal] = dict.fromkeys(skus, Decimal(0))
    for n in range(orders):
        when = start + timedelta(seconds=n * (12 * 3600 // max(orders, 1)))
        person = rng.choice(people)
        lines = []
        for sku in rng.sample(skus, rng.randint(1, 4)):
            name, price, unit, vat = PRODUCE[sku]
            qty = Decimal(rng.randint(1, 3))
            sold[sku] += qty
            lines.append(
                OrderLine(
                    sku=sku,
                    name=name,
                    quantity=qty,
                    unit=unit,
                    unit_price=Money.of(price),
                    vat_category=vat,
                )
            )
        method = rng.choice((PaymentMethod.CARD, PaymentMethod.CARD, PaymentMethod.COD))
        order = Order(
            id=f"O{start:%y%m%d}-{n + 1:04d}",
            number=f"DX-{n + 1:05d}",
            customer=person,
            lines=tuple(lines),
            shipping_fee=Money.of("3.50"),
            shipping_address=person.shipping_address,
            billing_address=person.billing_address,
            payment_method=method,
            created_at=when,
        )
        out.events.append(OrderCreated(order=order, occurred_at=when))
        if not follow_ups:
            continue
        gross = order.totals().gross
        if method is PaymentMethod.CARD:
            out.events.append(
                OrderPaid(
                    order_id=order.id,
                    payment=Payment(
                        id=f"P-{order.id}",
                        order_id=order.id,
                        amount=gross,
                        method=method,
                        paid_at=when + timedelta(minutes=1),
                    ),
                    occurred_at=when + timedelta(minutes=1),
                )
            )
            if rng.random() < 0.03:
                out.events.append(
                    OrderRefunded(
                        order_id=order.id,
                        refund=Refund(
                            id=f"R-{order.id}",
                            order_id=order.id,
                            amount=lines[0].unit_price,
                            reason="χτυπημένο προϊόν",
                            created_at=when + timedelta(hours=3),
                        ),
                        occurred_at=when + timedelta(hours=3),
                    )
                )
        elif rng.random() < 0.05:
            out.events.append(
                OrderCancelled(
                    order_id=order.id,
                    reason="ο πελάτης ακύρωσε",
                    occurred_at=when + timedelta(minutes=30),
                )
            )
    out.orders = orders
    out.sold = sold
    out.opening_stock = {sku: sold[sku] + Decimal(rng.randint(20, 60)) for sku in skus}
    return out
