// Built without npm: the charting library is missing; pages show tables only.
