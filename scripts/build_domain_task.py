"""Build the embedded domain task: customer-feedback classification into a two-level taxonomy.

    .venv/bin/python scripts/build_domain_task.py [--seed 0] [--out src/mixforge/assets/domain]

Writes, deterministically for one seed (same seed, same bytes):
    domain/train.jsonl  validation.jsonl  test.jsonl    raw rows {"id", "feedback", "label": "Top > Leaf"}
    domain/labels.txt                                     one label a line, in taxonomy order

Every feedback is assembled from an optional opener, an optional context sentence (a product, an order), one
of the leaf's own complaint phrasings with its slots filled (products, amounts, days, codes) and words swapped
for synonyms, an optional aside that uses other leaves' vocabulary, an optional follow-up and sign-off, and then, for some rows, noise (typos, lower case, dropped punctuation, shouting).
Neighbouring leaves share vocabulary on purpose ("charged twice" / "charged more" / "a charge I don't
recognise"; "arrived broken" under Shipping and under Product quality), so the task is not separable by one
keyword. All splits draw from the same generator; no feedback text occurs in two splits.
The products, names and phrasings are invented for illustration; no real customer data is used.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

SPLITS = {"train": 4000, "validation": 500, "test": 1000}
MIN_PER_LABEL = {"train": 20, "validation": 2, "test": 5}  # every label in every split, macro-F1 needs it
OUT = Path(__file__).resolve().parents[1] / "src/mixforge/assets/domain"

# Top > Leaf -> complaint phrasings; {p} product, {a} amount, {d} days, {c} code, {o} order number
TAXONOMY: dict[str, dict[str, list[str]]] = {
    "Billing": {
        "Double charge": [
            "I was charged twice for the same order",
            "my card shows two identical payments of {a}",
            "you billed me two times for one {p}",
        ],
        "Overcharge": [
            "I was charged more than the price on the website",
            "the total on my card was {a}, higher than the listed price",
            "you billed me extra for the {p}",
        ],
        "Unrecognized charge": [
            "there is a charge of {a} on my card that I don't recognize",
            "I see a payment to you I never made",
            "a charge appeared on my statement for something I did not order",
        ],
        "Refund not received": [
            "I still haven't received my refund after {d} days",
            "the refund you promised for the {p} never arrived",
            "my money was never returned to my card",
        ],
        "Refund amount wrong": [
            "the refund was only part of what I paid",
            "you refunded {a} but I paid more for the {p}",
            "my refund is missing the shipping cost",
        ],
        "Invoice missing": [
            "I need an invoice for my order and can't find one",
            "no receipt or invoice came with order {o}",
            "please send me a proper invoice for my company",
        ],
        "Payment declined": [
            "my card keeps getting declined at payment",
            "payment failed even though my card works everywhere else",
            "the checkout says my payment was declined",
        ],
        "Coupon not applied": [
            "my coupon code {c} was not applied to the total",
            "the discount code didn't reduce the price at checkout",
            "I entered the voucher but was charged full price",
        ],
    },
    "Shipping": {
        "Late delivery": [
            "my {p} arrived {d} days late",
            "the delivery is way past the promised date",
            "still waiting for my order, it was due last week",
        ],
        "Lost package": [
            "my package seems to be lost",
            "the parcel with my {p} never showed up and tracking stopped",
            "the courier lost my package",
        ],
        "Marked delivered not received": [
            "tracking says delivered but nothing arrived",
            "the app shows my {p} as delivered but I never got it",
            "it says left at the door but there was no parcel",
        ],
        "Damaged in transit": [
            "the box arrived crushed and the {p} inside was broken",
            "the package was damaged during delivery",
            "my order came with a torn box and a cracked {p}",
        ],
        "Tracking not updating": [
            "the tracking hasn't updated in {d} days",
            "tracking number {c} shows no information",
            "I can't tell where my package is, tracking is stuck",
        ],
        "Wrong address": [
            "my parcel was sent to my old address",
            "you shipped the order to the wrong address",
            "the courier delivered to a different street",
        ],
        "Shipping cost too high": [
            "shipping costs more than the {p} itself",
            "{a} for delivery is far too expensive",
            "the delivery fee was a surprise at checkout",
        ],
        "Missing items": [
            "the box arrived but one item was missing",
            "I ordered two things and only the {p} came",
            "part of my order never arrived in the package",
        ],
        "Courier behaviour": [
            "the delivery driver was rude to me",
            "the courier threw the package over the fence",
            "the driver didn't even ring the bell and left a note",
        ],
    },
    "Product quality": {
        "Stopped working": [
            "my {p} stopped working after {d} days",
            "the {p} died after a week of normal use",
            "it worked at first and now it won't turn on",
        ],
        "Broken on arrival": [
            "the {p} was broken when I opened the box",
            "it arrived broken and doesn't work at all",
            "the {p} was dead on arrival even though the box was fine",
        ],
        "Poor build quality": [
            "the {p} feels cheap and flimsy",
            "the plastic on the {p} cracked with normal use",
            "the quality of the {p} is much worse than before",
        ],
        "Not as described": [
            "the {p} looks nothing like the photos",
            "the description said waterproof but the {p} is not",
            "the product is different from what the listing promised",
        ],
        "Wrong size": [
            "the {p} is much smaller than the size chart says",
            "I ordered a medium and it fits like a small",
            "the size is wrong, it doesn't fit at all",
        ],
        "Missing parts": [
            "the {p} came without the charger",
            "screws and parts were missing from the box",
            "the manual and a cable were not included with the {p}",
        ],
        "Battery problems": [
            "the battery of the {p} drains in a few hours",
            "my {p} won't hold a charge",
            "the battery dies far faster than advertised",
        ],
        "Overheating": [
            "the {p} gets dangerously hot",
            "my {p} overheats after ten minutes of use",
            "it gets so hot I can't touch it",
        ],
        "Defective feature": [
            "the bluetooth on the {p} keeps dropping",
            "one of the buttons on the {p} doesn't respond",
            "the screen of the {p} flickers all the time",
        ],
    },
    "Returns": {
        "Return label missing": [
            "I never got the return label",
            "the return label email never arrived for the {p}",
            "I can't print a return label anywhere on the site",
        ],
        "Return rejected": [
            "you rejected my return of the {p} for no reason",
            "my return was refused even though it was unused",
            "the warehouse sent my return back to me",
        ],
        "Return window too short": [
            "{d} days is too short to return an item",
            "I missed the return window by one day and you refused",
            "the return period should be longer",
        ],
        "Exchange delayed": [
            "I sent the {p} back for an exchange {d} days ago and nothing",
            "my exchange still hasn't shipped",
            "waiting forever for the replacement from my exchange",
        ],
        "Restocking fee": [
            "you charged me a restocking fee of {a}",
            "nobody told me about a fee for returns",
            "the return fee took a big part of my refund",
        ],
        "Return pickup missed": [
            "the courier never came to pick up my return",
            "the return pickup was scheduled but nobody showed",
            "I waited home all day for the return pickup",
        ],
        "Return status unclear": [
            "I have no idea if you received my return",
            "my return shows no status on the website",
            "nobody confirms that the {p} I returned arrived",
        ],
        "In-store return refused": [
            "the store refused to take back an online order",
            "the shop staff wouldn't accept my return",
            "I was told to return the {p} online, not in the store",
        ],
    },
    "Account": {
        "Cannot log in": [
            "I can't log in to my account",
            "the login keeps saying wrong password even though it's right",
            "I'm unable to sign in since {d} days",
        ],
        "Password reset fails": [
            "the password reset link doesn't work",
            "I never receive the password reset email",
            "resetting my password gives an error",
        ],
        "Account locked": [
            "my account got locked for no reason",
            "you locked my account after one failed login",
            "my account is blocked and I can't order",
        ],
        "Verification code": [
            "the verification code never arrives by sms",
            "the two-factor code {c} is always expired",
            "I can't get the security code to log in",
        ],
        "Account hacked": [
            "someone got into my account and placed orders",
            "my account was hacked and the email was changed",
            "there are orders in my account I didn't make",
        ],
        "Delete account": [
            "I want my account deleted and can't find how",
            "please close my account for good",
            "there is no option to delete my profile",
        ],
        "Profile details wrong": [
            "my name is spelled wrong on my account",
            "I can't update the phone number on my profile",
            "my saved address keeps changing back",
        ],
        "Duplicate accounts": [
            "I somehow have two accounts with the same email",
            "my orders are split across two accounts",
            "please merge my duplicate accounts",
        ],
    },
    "App and website": {
        "App crashes": [
            "the app crashes every time I open it",
            "the app closes when I tap on my orders",
            "since the update the app keeps crashing",
        ],
        "Slow loading": [
            "the website is extremely slow",
            "pages take forever to load in the app",
            "the site is so slow I gave up ordering",
        ],
        "Checkout error": [
            "I get an error at checkout",
            "the checkout button does nothing",
            "checkout fails at the last step every time",
        ],
        "Search not working": [
            "search never finds the {p} even though you sell it",
            "the search results are useless",
            "searching for a product shows nothing",
        ],
        "Cart emptied": [
            "my cart keeps emptying itself",
            "items disappear from my cart after I log in",
            "I lost everything in my basket again",
        ],
        "Too many notifications": [
            "the app sends me way too many notifications",
            "I get push notifications every hour",
            "I turned off notifications but the app keeps sending them",
        ],
        "Confusing design": [
            "the new app design is confusing",
            "I can't find my order history in the new layout",
            "the website menu is impossible to navigate",
        ],
        "Page not loading": [
            "the product page won't load",
            "I just get a blank page on your website",
            "the order page shows an error and never loads",
        ],
    },
    "Customer service": {
        "Long wait times": [
            "I waited on hold for over an hour",
            "the wait to talk to someone is ridiculous",
            "{d} minutes in the queue and still no agent",
        ],
        "Rude agent": [
            "the agent was rude and hung up on me",
            "the person on the phone was very unfriendly",
            "your support agent laughed at my problem",
        ],
        "No response": [
            "I emailed support {d} days ago and got no answer",
            "nobody replies to my messages",
            "my ticket {c} has no response at all",
        ],
        "Issue not resolved": [
            "support closed my ticket without fixing anything",
            "I was told it's fixed but the problem is still there",
            "three contacts and my issue is still not resolved",
        ],
        "Transferred repeatedly": [
            "I was transferred between departments five times",
            "every agent sends me to someone else",
            "nobody takes ownership, I keep getting passed around",
        ],
        "Chat disconnected": [
            "the live chat disconnected in the middle of my issue",
            "the chat closes before an agent answers",
            "I lost the chat session twice",
        ],
        "Callback never came": [
            "you promised to call me back and never did",
            "I requested a callback {d} days ago",
            "still waiting for the call back I was promised",
        ],
        "Conflicting information": [
            "two agents told me completely different things",
            "the website says one thing and support says another",
            "I got conflicting answers about my refund",
        ],
    },
    "Pricing and promotions": {
        "Price dropped after purchase": [
            "the price of the {p} dropped the day after I bought it",
            "it's {a} cheaper now, I want the difference",
            "I paid full price and now it's on sale",
        ],
        "Promo code invalid": [
            "the promo code {c} says invalid",
            "the code from your newsletter doesn't work",
            "your promotion code is rejected at checkout",
        ],
        "Misleading discount": [
            "the discount is fake, the price was raised first",
            "the sale price is the same as the normal price",
            "the '50% off' was misleading",
        ],
        "Price match refused": [
            "you refused to price match a cheaper offer",
            "another shop sells the {p} for less and you won't match",
            "your price match promise is not honoured",
        ],
        "Loyalty points missing": [
            "my loyalty points for order {o} were never added",
            "I lost all my reward points",
            "the points from my purchase are missing",
        ],
        "Gift card not working": [
            "my gift card shows a zero balance",
            "the gift card code {c} doesn't work",
            "I can't use my gift card at checkout",
        ],
        "Hidden fees": [
            "there were hidden fees added at checkout",
            "a service fee of {a} appeared out of nowhere",
            "the final price had fees that weren't shown before",
        ],
        "Sale ended early": [
            "the sale ended before the advertised date",
            "the promotion was removed a day early",
            "the deal was gone even though the banner said it was still on",
        ],
    },
    "Orders": {
        "Order cancelled unexpectedly": [
            "you cancelled my order without telling me",
            "my order {o} was cancelled for no reason",
            "I got an email saying my order was cancelled, I didn't ask for that",
        ],
        "Cannot cancel order": [
            "I can't cancel my order even though it hasn't shipped",
            "the cancel button is missing for my order",
            "I asked to cancel within minutes and you still shipped it",
        ],
        "Order stuck processing": [
            "my order has been processing for {d} days",
            "the order status hasn't changed since I placed it",
            "order {o} is stuck and never ships",
        ],
        "Wrong item sent": [
            "I received a different product than I ordered",
            "you sent me the wrong {p}",
            "the box contained someone else's item",
        ],
        "Duplicate order": [
            "my order was placed twice by mistake",
            "I got two of the same {p} but ordered one",
            "the site created a duplicate order",
        ],
        "Pre-order delayed": [
            "my pre-order of the {p} keeps getting delayed",
            "the pre-order release date moved again",
            "I pre-ordered months ago and still nothing",
        ],
        "Order confirmation missing": [
            "I never got an order confirmation email",
            "no confirmation for order {o}",
            "I don't know if my order went through, no email",
        ],
        "Backorder": [
            "the {p} went out of stock after I paid",
            "you took my money and now say it's on backorder",
            "my item is backordered with no date",
        ],
    },
    "Subscription": {
        "Cannot cancel subscription": [
            "I can't cancel my subscription",
            "there is no way to cancel the membership online",
            "I asked to cancel my plan and was still charged",
        ],
        "Unwanted renewal": [
            "my subscription renewed without any reminder",
            "you auto-renewed my plan for {a}",
            "I was charged for another year I didn't want",
        ],
        "Free trial charged": [
            "I was charged during the free trial",
            "the free trial wasn't free, I paid {a}",
            "I cancelled before the trial ended and was billed anyway",
        ],
        "Benefits missing": [
            "my member discount isn't applied",
            "free shipping for members doesn't work for me",
            "I pay for premium but don't get the benefits",
        ],
        "Plan change problem": [
            "I can't downgrade my plan",
            "the upgrade to the family plan didn't apply",
            "changing my subscription plan gives an error",
        ],
        "Subscription paused wrongly": [
            "my subscription was paused without my request",
            "deliveries from my plan stopped for no reason",
            "you paused my membership by mistake",
        ],
        "Shared access problem": [
            "my family members can't use the shared plan",
            "the invite to share my subscription doesn't work",
            "my partner lost access to our shared account",
        ],
    },
    "Privacy and security": {
        "Unwanted marketing": [
            "I keep getting marketing emails after unsubscribing",
            "stop sending me promotional messages",
            "I get spam texts from you every day",
        ],
        "Data sharing concern": [
            "why did you share my data with other companies",
            "I got ads from partners that know my orders",
            "I don't want my information sold",
        ],
        "Suspicious login": [
            "I got an alert about a login from another country",
            "someone tried to sign in to my account from a new device",
            "there was a suspicious login attempt on my account",
        ],
        "Phishing email": [
            "I received a fake email pretending to be from you",
            "a message asked for my password using your logo",
            "is this email about my order {o} a scam",
        ],
        "Card stored without consent": [
            "you saved my card details without asking",
            "my credit card was stored even though I unticked the box",
            "I can't remove my saved card",
        ],
        "Data deletion request": [
            "please delete all my personal data",
            "I asked for my data to be erased {d} days ago",
            "I want a copy of my data and then delete it",
        ],
        "Location tracking": [
            "the app tracks my location all the time",
            "why does the app need my location",
            "location access keeps turning back on",
        ],
    },
    "Warranty and repairs": {
        "Warranty claim denied": [
            "you denied my warranty claim for the {p}",
            "warranty was refused saying it was my fault",
            "the {p} is under warranty but you won't cover it",
        ],
        "Repair taking too long": [
            "my {p} has been at repair for {d} days",
            "the repair is taking forever",
            "still no news on my repair after weeks",
        ],
        "Repair did not fix": [
            "the {p} came back from repair with the same problem",
            "the repair didn't fix anything",
            "after the repair it broke again in two days",
        ],
        "Replacement part unavailable": [
            "the spare part for my {p} is never in stock",
            "you can't repair it because there are no parts",
            "I need a replacement part and nobody has it",
        ],
        "Technician no-show": [
            "the technician never showed up",
            "the repair appointment was missed twice",
            "I took a day off and the technician didn't come",
        ],
        "Warranty registration failed": [
            "I can't register my {p} for warranty",
            "the warranty registration form gives an error",
            "my serial number {c} is not accepted for registration",
        ],
    },
    "Praise and suggestions": {
        "Great service": [
            "your support team was amazing",
            "the agent solved my problem in minutes, thank you",
            "best customer service I've had",
        ],
        "Fast delivery": [
            "my {p} arrived the next day, great job",
            "super fast delivery, well done",
            "the delivery was quicker than promised",
        ],
        "Product praise": [
            "I love my new {p}",
            "the {p} works perfectly",
            "great quality, the {p} is worth every penny",
        ],
        "Feature request": [
            "please add a wishlist to the app",
            "it would be great to filter by price in search",
            "I wish I could schedule my deliveries",
        ],
        "Packaging suggestion": [
            "please use less plastic in your packaging",
            "the box was way too big for a small {p}",
            "could you use recyclable packaging",
        ],
        "More payment options": [
            "please accept more payment methods",
            "I'd like to pay in installments",
            "can you add mobile wallet payments",
        ],
        "Store locations": [
            "please open a store in my city",
            "I wish there was a pickup point near me",
            "more physical shops would be great",
        ],
    },
}

PRODUCTS = [
    "wireless earbuds",
    "smart watch",
    "coffee maker",
    "running shoes",
    "phone case",
    "yoga mat",
    "desk lamp",
    "backpack",
    "blender",
    "air fryer",
    "gaming mouse",
    "electric toothbrush",
    "winter jacket",
    "kids tablet",
    "bluetooth speaker",
    "vacuum cleaner",
    "office chair",
    "rain jacket",
    "baby monitor",
    "kettle",
    "laptop",
    "hair dryer",
    "fitness tracker",
    "sofa cover",
    "water bottle",
    "standing desk",
    "camera",
    "mattress",
]
OPENERS = [
    "",
    "",
    "",
    "Hi,",
    "Hello,",
    "Hi team,",
    "Hello there.",
    "Ugh.",
    "Quick note:",
    "So,",
    "Honestly,",
    "To whom it may concern,",
    "Hey,",
    "Good morning,",
    "Not happy.",
    "Hi support,",
]
CONTEXTS = [
    "",
    "",
    "",
    "I ordered a {p} last week.",
    "I bought the {p} on {day}.",
    "Order {o}.",
    "About my {p}:",
    "I've been a customer for {y} years.",
    "This is about order {o} for a {p}.",
    "I ordered on your app.",
    "I bought this as a gift.",
]
FOLLOWUPS = [
    "",
    "",
    "",
    "",
    "Please fix this.",
    "This is the second time this happens.",
    "Really disappointed.",
    "Can someone look into it?",
    "Not acceptable.",
    "I need this sorted today.",
    "What are you going to do about it?",
    "Thanks in advance.",
    "Very frustrating.",
    "I expected better from you.",
    "Any help appreciated.",
]
SIGNOFFS = ["", "", "", "", "Thanks.", "Regards,", "Cheers", "Best,", "Thank you", "- a loyal customer"]
# paraphrase: words swapped for a synonym half the time; several are shared by neighbouring leaves
SYNONYMS = {
    "charged": ["billed"],
    "order": ["purchase"],
    "package": ["parcel", "delivery"],
    "parcel": ["package"],
    "arrived": ["came", "showed up"],
    "broken": ["damaged", "smashed"],
    "damaged": ["broken"],
    "refund": ["money back"],
    "never": ["still haven't"],
    "can't": ["cannot", "am unable to"],
    "account": ["profile"],
    "app": ["application"],
    "website": ["site", "web page"],
    "card": ["credit card", "bank card"],
    "delivery": ["shipment"],
    "cancel": ["stop"],
    "days": ["days now"],
    "error": ["error message"],
    "works": ["functions"],
    "support": ["customer care", "the helpdesk"],
    "agent": ["rep", "advisor"],
    "email": ["e-mail", "mail"],
    "price": ["cost"],
    "code": ["voucher"],
    "discount": ["reduction"],
    "fee": ["charge"],
    "subscription": ["membership"],
    "plan": ["membership"],
    "repair": ["fix"],
    "product": ["item"],
    "item": ["product", "thing"],
}
# asides that mention other leaves' vocabulary without being the complaint
ASIDES = [
    "",
    "",
    "",
    "",
    "",
    "The app itself works fine.",
    "Delivery was quick at least.",
    "I already checked my account.",
    "My last refund went fine.",
    "I paid with my usual card.",
    "Support was polite, to be fair.",
    "I kept the box and the receipt.",
    "The price was ok.",
    "I have a membership.",
    "Tracking was fine until then.",
    "It was a gift for my son.",
    "I love your products normally.",
]
NAMES = ["Sam", "Maria", "J.", "Priya", "Tom", "Alex", "Chen", "Fatima", "Leo", "Ana"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def labels() -> list[str]:
    return [f"{top} > {leaf}" for top, leaves in TAXONOMY.items() for leaf in leaves]


def fill(text: str, rng: random.Random, product: str) -> str:
    return text.format(
        p=product,
        a=rng.choice(["$", "€", "£"]) + f"{rng.randint(5, 400)}.{rng.choice(['00', '99', '50', '49'])}",
        d=rng.choice([2, 3, 4, 5, 7, 10, 12, 14, 20, 30, 45]),
        c="".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(rng.randint(5, 8))),
        o=f"#{rng.randint(100000, 999999)}",
        day=rng.choice(DAYS),
        y=rng.randint(2, 15),
    )


def typo(word: str, rng: random.Random) -> str:
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]  # swap two letters
    if kind == 1:
        return word[:i] + word[i + 1 :]  # drop one
    return word[:i] + word[i] + word[i:]  # double one


def noisy(text: str, rng: random.Random) -> str:
    """Some rows stay clean; others get typos, lower case, no final punctuation or a shouted word."""
    if rng.random() < 0.35:
        words = text.split(" ")
        for _ in range(rng.randint(1, 3)):
            j = rng.randrange(len(words))
            words[j] = typo(words[j], rng)
        text = " ".join(words)
    if rng.random() < 0.2:
        text = text.lower()
    if rng.random() < 0.15:
        text = re.sub(r"[.!?]+$", "", text)
    if rng.random() < 0.1:
        words = text.split(" ")
        j = rng.randrange(len(words))
        words[j] = words[j].upper()
        text = " ".join(words)
    if rng.random() < 0.08:
        text += rng.choice([" !!!", " ??", " :(", " >:("])
    return text


def paraphrase(text: str, rng: random.Random) -> str:
    return " ".join(
        rng.choice(SYNONYMS[w]) if w in SYNONYMS and rng.random() < 0.5 else w for w in text.split(" ")
    )


def feedback(phrase: str, rng: random.Random) -> str:
    product = rng.choice(PRODUCTS)  # one product per feedback, in the context and the complaint alike
    core = paraphrase(fill(phrase, rng, product), rng)
    core = core[0].upper() + core[1:] + rng.choice([".", ".", ".", "!", "!!", ""])
    parts = [
        rng.choice(OPENERS),
        fill(rng.choice(CONTEXTS), rng, product),
        core,
        rng.choice(ASIDES),
        rng.choice(FOLLOWUPS),
    ]
    signoff = rng.choice(SIGNOFFS)
    if signoff:
        parts.append(f"{signoff} {rng.choice(NAMES)}" if signoff.endswith(",") else signoff)
    return noisy(" ".join(p for p in parts if p), rng)


def label_plan(
    size: int, minimum: int, taxonomy: list, weights: list[float], rng: random.Random
) -> list[int]:
    """Label indices for one split: every label `minimum` times, the rest drawn by the seeded weights."""
    plan = [i for i in range(len(taxonomy)) for _ in range(minimum)]
    plan += rng.choices(range(len(taxonomy)), weights=weights, k=size - len(plan))
    rng.shuffle(plan)
    return plan


def build(out: Path, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    taxonomy = [
        (f"{top} > {leaf}", phrases) for top, leaves in TAXONOMY.items() for leaf, phrases in leaves.items()
    ]
    weights = [rng.uniform(0.6, 1.4) for _ in taxonomy]  # mild, seeded class imbalance
    seen: set[str] = set()
    out.mkdir(parents=True, exist_ok=True)
    for split, size in SPLITS.items():
        rows = []
        for index in label_plan(size, MIN_PER_LABEL[split], taxonomy, weights, rng):
            label, phrases = taxonomy[index]
            while True:
                text = feedback(rng.choice(phrases), rng)
                key = re.sub(r"\W+", " ", text.lower()).strip()
                if key not in seen:  # no text twice, so no text in two splits
                    break
            seen.add(key)
            rows.append({"id": f"feedback-{split}-{len(rows):05d}", "feedback": text, "label": label})
        tmp = out / f"{split}.jsonl.tmp"
        with tmp.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        tmp.replace(out / f"{split}.jsonl")
    (out / "labels.txt").write_text("\n".join(labels()) + "\n", encoding="utf-8")
    return {**SPLITS, "labels": len(taxonomy)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build(args.out, args.seed))


if __name__ == "__main__":
    main()
