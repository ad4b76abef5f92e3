"""The Jupyter front-end: output routing, live views, magics. Imported only inside a kernel.

Everything here is built on the public observer API (``suitkaise_nb.events``) and acts on
processes only through their public methods.
"""
