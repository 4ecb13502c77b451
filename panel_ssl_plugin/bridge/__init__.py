"""The bridge: this plugin as a service for panels in any language (``panel-ssl serve``).

The pluggy contract is unchanged: the bridge is one more implementation of the ``host_*`` hooks
(hooks.py), registered like any host. A panel opens the popups with signed launch links
(tokens.py, web.py), answers the plugin's signed JSON calls (signing.py, client.py), posts its
events (web.py) and receives signed webhooks from a durable outbox (webhooks.py). service.py
builds the Flask app that ``panel-ssl serve`` runs; settings.py reads its environment.
"""
