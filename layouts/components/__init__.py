"""Map and callback steps: the wall's and ward page's building blocks and pure builders."""
