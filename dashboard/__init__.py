"""The read-only web dashboard of a member's releases (edge code: serves HTTP).

``dashboard.app.create_app`` builds the Flask app over a function that loads the verified
releases; ``dashboard.server`` serves it with waitress for ``scfed dashboard``. The pages'
contents are read by the pure ``view`` and ``charts`` modules, their words by ``i18n``.
"""
