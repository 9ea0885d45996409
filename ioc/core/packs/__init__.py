"""City pack data (map step): one directory per city; a package only so wheels ship the files."""
