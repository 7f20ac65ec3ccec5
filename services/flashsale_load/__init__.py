"""`flashsale load`: a bounded, realistic crowd played against a sale's public URL, and its report.

A platform team rehearses a sale against staging with it; the tests point it at loopback. It speaks
only the gateway's public HTTP contract (what the sale page's script sends), never its internals.
"""
