"""The fixed prompt set every benchmark uses: three realistic lengths."""

SHORT = [
    "hey, how's it going?",
    "What's the capital of Australia?",
    "Translate 'good morning' into Spanish.",
    "Write a haiku about autumn rain.",
    "Is 97 a prime number?",
    "Recommend a sci-fi book for a long flight.",
    "Fix the typo: 'recieve the pacakge'",
    "What does HTTP 429 mean?",
]

PARAGRAPH = [
    "I'm planning a three-day trip to Lisbon in early spring with my partner. We like food "
    "markets, walking, live music and a bit of history, but we don't enjoy crowded tourist "
    "traps. Could you suggest a day-by-day plan, including one day trip outside the city, "
    "and tell us which neighbourhoods are best to stay in and what to book in advance?",
    "Our team keeps missing sprint goals. Stand-ups run long, tickets are vague, and two "
    "senior engineers spend half their time on support. Management wants a plan by Friday. "
    "What concrete changes would you propose for the next two sprints, how would we measure "
    "whether they work, and how should I present this to a skeptical director?",
    "Explain, as if to a first-year student, why the sky is blue during the day but red and "
    "orange at sunset. Mention Rayleigh scattering, the path length of sunlight through the "
    "atmosphere, and why clouds look white. Finish with one simple experiment they could do "
    "at home with a glass of water, milk and a flashlight.",
]

LONG_CODE = [
    "Here is a Python module from our billing service. It is slow and sometimes double-charges "
    "customers when two workers pick up the same invoice. Review it, explain the race "
    "condition, and rewrite it with proper locking or idempotency keys.\n\n"
    "import time\nimport psycopg2\n\n"
    "def process_pending(conn):\n"
    "    cur = conn.cursor()\n"
    "    cur.execute(\"SELECT id, customer_id, amount FROM invoices WHERE status = 'pending'\")\n"
    "    for invoice_id, customer_id, amount in cur.fetchall():\n"
    "        card = get_card(conn, customer_id)\n"
    "        if card is None:\n"
    "            mark_failed(conn, invoice_id, 'no card')\n"
    "            continue\n"
    "        result = charge(card, amount)\n"
    "        if result.ok:\n"
    "            cur.execute(\"UPDATE invoices SET status = 'paid' WHERE id = %s\",\n"
    "                        (invoice_id,))\n"
    "        else:\n"
    "            retries = get_retries(conn, invoice_id)\n"
    "            if retries > 3:\n"
    "                mark_failed(conn, invoice_id, result.error)\n"
    "            else:\n"
    "                time.sleep(2 ** retries)\n"
    "                increment_retries(conn, invoice_id)\n"
    "        conn.commit()\n\n"
    "def get_card(conn, customer_id):\n"
    "    cur = conn.cursor()\n"
    "    cur.execute('SELECT token FROM cards WHERE customer_id = %s', (customer_id,))\n"
    "    row = cur.fetchone()\n"
    "    return row[0] if row else None\n\n"
    "Also suggest tests that would have caught the double charge, and say how you would "
    "deploy the fix without downtime while workers are running.",
]

CLASSES = {"short": SHORT, "paragraph": PARAGRAPH, "long_code": LONG_CODE}
